//! Politeness (DESIGN §8) through real processes: exclusions never contact
//! (the counting server says so) and are reported; a reload reaches a
//! running scan; a target that says `421` first ends `starttls_ok` after a
//! retry.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mxscope_coordinator::model::ScanState;
use mxscope_tests::lab;
use mxscope_tests::mta::busy::Busy;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::{
    bin, test_dir, wait_for, CoordinatorProcess, WorkerProcess, ADMIN_TOKEN,
};
use serde_json::Value;

/// `mxscope scan` of `domains` from `bind` with `extra` options; the
/// exported records.
fn scan(name: &str, domains: &[String], bind: &str, extra: &[&str]) -> Vec<Value> {
    let dir = test_dir(name);
    let list = dir.join("list.txt");
    std::fs::write(&list, domains.join("\n")).unwrap();
    let data = dir.join("data");
    let out = Command::new(bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--allow-private",
            "--bind",
            bind,
            "--timeout-session",
            "10s",
        ])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    export(&data, "s1")
}

fn export(data: &Path, scan: &str) -> Vec<Value> {
    let out = Command::new(bin("mxscope"))
        .args(["export", scan, "--format", "jsonl", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn target(records: &[Value], ip: IpAddr) -> &Value {
    records
        .iter()
        .find(|r| r["kind"] == "target" && r["ip"] == ip.to_string())
        .unwrap_or_else(|| panic!("no target record for {ip}: {records:?}"))
}

fn domain<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["kind"] == "domain" && r["domain"] == name)
        .unwrap_or_else(|| panic!("no domain record for {name}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn excluded_networks_domains_and_mx_suffixes_are_never_contacted() {
    lab::postfix();
    let fakes = lab::fakes();
    let counted = domains::for_host(&MX_COUNT);
    let valid = domains::for_host(&MX_VALID);
    let list = vec![counted.clone(), valid.clone()];
    let dir = test_dir("exclusions-files");
    // The control: without exclusions the counting server sees the scan.
    let records = scan("exclusions-none", &list, "127.0.2.90", &[]);
    assert_eq!(fakes.sessions_from("127.0.2.90".parse().unwrap()), 1);
    assert_ne!(target(&records, MX_COUNT.ip)["outcome"], "skipped");

    let cases = [
        (
            "cidr",
            "127.0.2.91",
            format!("# the counting server's network\n{}/30\n", MX_COUNT.ip),
        ),
        (
            "mx",
            "127.0.2.92",
            format!("mx:{}   # its MX name\n", MX_COUNT.name),
        ),
        ("domain", "127.0.2.93", format!("domain:{counted}\n")),
    ];
    for (kind, bind, text) in cases {
        let file = write(&dir, kind, &text);
        let records = scan(
            &format!("exclusions-{kind}"),
            &list,
            bind,
            &["--exclude", &file],
        );
        assert_eq!(
            fakes.sessions_from(bind.parse().unwrap()),
            0,
            "{kind}: the excluded server was contacted"
        );
        // What is not excluded is probed as usual.
        assert_eq!(
            target(&records, MX_VALID.ip)["outcome"],
            "starttls_ok",
            "{kind}"
        );
        if kind == "domain" {
            let record = domain(&records, &counted);
            assert_eq!(record["dns"]["status"], "excluded", "{record}");
            assert!(record["dns"]["error"].as_str().unwrap().contains(&counted));
            assert!(records.iter().all(|r| r["ip"] != MX_COUNT.ip.to_string()));
        } else {
            let record = target(&records, MX_COUNT.ip);
            assert_eq!(record["outcome"], "skipped", "{kind}: {record}");
            assert_eq!(record["skip_reason"], "excluded", "{kind}: {record}");
            assert!(record["detail"].as_str().unwrap().starts_with("excluded"));
        }
    }
}

#[test]
fn a_bad_exclusion_line_is_refused_with_its_number() {
    let dir = test_dir("exclusions-bad");
    let file = write(&dir, "bad", "192.0.2.0/24\n\n10.0.0.0/33\n");
    let list = write(&dir, "list", "example.org\n");
    let out = Command::new(bin("mxscope"))
        .args(["scan", &list, "--exclude", &file, "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_exclusion_list_reaches_a_running_scan() {
    lab::postfix();
    let fakes = lab::fakes();
    let dir = test_dir("exclusions-reload");
    let exclude = write(&dir, "exclude.txt", "# nothing yet\n");
    let coordinator = CoordinatorProcess::start_with(
        &dir.join("data"),
        "10s",
        "127.0.0.1:0",
        &["--exclude".into(), exclude.clone().into()],
    )
    .unwrap();
    let list = write(
        &dir,
        "list.txt",
        &format!(
            "{}\n{}\n",
            domains::for_host(&MX_COUNT),
            domains::for_host(&MX_VALID)
        ),
    );
    let submit = Command::new(bin("mxscope"))
        .args([
            "submit",
            &list,
            "--vantage",
            "V",
            "--allow-private",
            "--coordinator",
            &coordinator.url,
        ])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    // The scan runs (submitted, no worker yet); the operator adds an entry.
    std::fs::write(&exclude, format!("{}\n", MX_COUNT.ip)).unwrap();
    // SAFETY: kill with a pid of our own child.
    unsafe { libc::kill(coordinator.pid() as i32, libc::SIGHUP) };
    let log = dir.join("data").with_extension("coordinator.log");
    wait_for(Duration::from_secs(10), "the reload", || async {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("reloaded: 1 entries"))
    })
    .await;
    let bind: IpAddr = "127.0.2.94".parse().unwrap();
    let _worker = WorkerProcess::start(&coordinator.url, "V", bind, "reload-w", &dir).unwrap();
    let admin = coordinator.admin().await;
    wait_for(Duration::from_secs(60), "the scan to finish", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.status("s1").await.ok()?;
            (status.meta.state == ScanState::Done).then_some(())
        }
    })
    .await;
    assert_eq!(
        fakes.sessions_from(bind),
        0,
        "contacted after the reload excluded it"
    );
    let out = Command::new(bin("mxscope"))
        .args([
            "export",
            "s1",
            "--format",
            "jsonl",
            "--coordinator",
            &coordinator.url,
        ])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(target(&records, MX_COUNT.ip)["skip_reason"], "excluded");
    assert_eq!(target(&records, MX_VALID.ip)["outcome"], "starttls_ok");
}

#[test]
fn a_server_that_says_421_first_ends_starttls_ok_after_a_retry() {
    lab::postfix();
    // mx-valid's address, another port: 421 first, then the real Postfix.
    let port = 2626;
    let busy = Busy::start(
        SocketAddr::new(MX_VALID.ip, port),
        SocketAddr::new(MX_VALID.ip, SMTP_PORT),
        1,
    )
    .unwrap();
    let list = vec![domains::for_host(&MX_VALID)];
    let records = scan(
        "retry-421",
        &list,
        "127.0.2.95",
        &[
            "--port",
            &port.to_string(),
            "--retry-delay",
            "1s",
            "--retry-attempts",
            "3",
        ],
    );
    let record = target(&records, MX_VALID.ip);
    assert_eq!(record["outcome"], "starttls_ok", "{record}");
    let retries = &record["retries"];
    assert_eq!(retries["after_retry"], true, "{record}");
    assert_eq!(retries["still_limited"], false);
    let attempts = retries["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{record}");
    assert_eq!(attempts[0]["outcome"], "greeting_refused");
    assert_eq!(attempts[0]["code"], 421);
    assert_eq!(attempts[1]["outcome"], "starttls_ok");
    assert!(attempts[1]["at_ms"].as_u64().unwrap() >= 1000, "{record}");
    assert_eq!(busy.sessions(), 2);
    // The report says so: two sessions to one IP, one target retried.
    let data = lab::dir().join("cluster/retry-421/data");
    let out = Command::new(bin("mxscope"))
        .args(["report", "s1", "--format", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let politeness = &report["vantages"][0]["politeness"];
    assert_eq!(politeness["sessions"], 2, "{politeness}");
    assert_eq!(politeness["max_sessions_per_ip"], 2);
    assert_eq!(politeness["retried_targets"], 1);
    assert_eq!(politeness["still_rate_limited"], 0);
    let text = Command::new(bin("mxscope"))
        .args(["report", "s1", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("2 SMTP sessions to 1 IPs"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_gap_and_network_rate_hold_across_two_workers_of_a_vantage() {
    use mxscope_tests::perf::{self, PerfDns, PERF_SMTP_PORT};
    let dir = test_dir("pacing");
    let dns = PerfDns::start(&dir.join("unbound"), 256).unwrap();
    // Six targets in 127.3.0.0/24, six in 127.3.1.0/24.
    let picked: Vec<usize> = (0..6).chain(250..256).collect();
    let addrs: Vec<IpAddr> = picked.iter().map(|i| perf::address(*i)).collect();
    let seen = perf::recorder(&addrs, PERF_SMTP_PORT).await.unwrap();
    let coordinator = CoordinatorProcess::start_with(
        &dir.join("data"),
        "10s",
        "127.0.0.1:0",
        &["--probe-batch".into(), "3".into()],
    )
    .unwrap();
    let list = write(
        &dir,
        "list.txt",
        &picked
            .iter()
            .map(|i| perf::domain(*i) + "\n")
            .collect::<String>(),
    );
    let submit = Command::new(bin("mxscope"))
        .args([
            "submit",
            &list,
            "--vantage",
            "V",
            "--allow-private",
            "--coordinator",
            &coordinator.url,
        ])
        .args([
            "--resolver",
            &dns.addr.to_string(),
            "--port",
            &PERF_SMTP_PORT.to_string(),
        ])
        // Every session is refused with 421: two sessions per target.
        .args(["--retry-attempts", "2", "--retry-delay", "100ms"])
        .args([
            "--ip-gap",
            "1s",
            "--network-rate",
            "4",
            "--vantage-rate",
            "0",
        ])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let sources: [IpAddr; 2] = ["127.0.2.96".parse().unwrap(), "127.0.2.97".parse().unwrap()];
    let one_task = ["--capacity".into(), "1".into()];
    let _w1 =
        WorkerProcess::start_with(&coordinator.url, "V", sources[0], "pace-1", &dir, &one_task)
            .unwrap();
    let _w2 =
        WorkerProcess::start_with(&coordinator.url, "V", sources[1], "pace-2", &dir, &one_task)
            .unwrap();
    let admin = coordinator.admin().await;
    wait_for(Duration::from_secs(90), "the scan to finish", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.status("s1").await.ok()?;
            (status.meta.state == ScanState::Done).then_some(())
        }
    })
    .await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|s| s.at);
    assert_eq!(seen.len(), 24, "two sessions per target: {seen:?}");
    let clients: std::collections::BTreeSet<IpAddr> = seen.iter().map(|s| s.client).collect();
    assert_eq!(
        clients,
        sources.into_iter().collect(),
        "both workers worked"
    );
    // Per network (/24), whichever worker: 4/s, so 12 sessions span at
    // least 2.75 s and no two start together (slack for a loaded machine's
    // scheduling: each pair at least 150 ms apart, the span 2.6 s).
    for net in [0u8, 1] {
        let times: Vec<_> = seen
            .iter()
            .filter(|s| matches!(s.target, IpAddr::V4(v4) if v4.octets()[2] == net))
            .map(|s| s.at)
            .collect();
        assert_eq!(times.len(), 12);
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(150),
                "127.3.{net}.0/24: sessions {gap:?} apart"
            );
        }
        let span = times[11] - times[0];
        assert!(
            span >= Duration::from_millis(2600),
            "127.3.{net}.0/24: 12 sessions in {span:?}"
        );
    }
    // Per IP: the retry waited for the 1 s gap, not only its 100 ms delay
    // (150 ms of slack).
    for ip in &addrs {
        let times: Vec<_> = seen
            .iter()
            .filter(|s| s.target == *ip)
            .map(|s| s.at)
            .collect();
        assert_eq!(times.len(), 2, "{ip}");
        assert!(
            times[1] - times[0] >= Duration::from_millis(850),
            "{ip}: {:?}",
            times[1] - times[0]
        );
    }
}
