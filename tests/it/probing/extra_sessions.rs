//! The per-IP gap holds inside one probe too (DESIGN §8): a target's
//! legacy-version sessions wait for their turn like its first session. The
//! perf lab's SMTP server (rustls, TLS 1.2 and 1.3) counts the sessions and
//! stamps them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mxscope_tests::perf::smtp::{self, Acceptors, CertKind, Mode, PerfCerts, Stats};
use mxscope_tests::perf::{self, PerfDns, PERF_SMTP_PORT};
use mxscope_tests::runs::cluster::{bin, test_dir};
use serde_json::Value;

/// Its own DNS port: another test runs the perf lab's default one.
const DNS: &str = "127.0.0.1:5398";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sessions_to_one_ip_keep_the_ip_gap() {
    let dir = test_dir("extra-sessions");
    let dns = PerfDns::start_on(&dir.join("unbound"), 1002, DNS.parse().unwrap()).unwrap();
    let picked = [1000usize, 1001];
    let certs = PerfCerts::generate().unwrap();
    let stats = Arc::new(Stats::default());
    let addrs: Vec<(IpAddr, Mode)> = vec![
        (perf::address(1000), Mode::Fast(CertKind::EcdsaP256)),
        (perf::address(1001), Mode::Fast(CertKind::Rsa2048)),
    ];
    smtp::serve(
        &addrs,
        PERF_SMTP_PORT,
        &Acceptors::new(&certs).unwrap(),
        Duration::ZERO,
        stats.clone(),
    )
    .await
    .unwrap();
    let list = dir.join("list.txt");
    let text: String = picked.iter().map(|i| perf::domain(*i) + "\n").collect();
    std::fs::write(&list, text).unwrap();
    let data = dir.join("data");
    let out = tokio::process::Command::new(bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args(["--resolver", &dns.addr.to_string()])
        .args(["--port", &PERF_SMTP_PORT.to_string()])
        .args(["--allow-private", "--legacy", "--timeout-session", "10s"])
        .args([
            "--ip-gap",
            "1s",
            "--network-rate",
            "0",
            "--vantage-rate",
            "0",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = tokio::process::Command::new(bin("mxscope"))
        .args(["export", "s1", "--format", "jsonl", "--data-dir"])
        .arg(&data)
        .output()
        .await
        .unwrap();
    let records: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen = stats.seen.lock().unwrap().clone();
    for (ip, _) in &addrs {
        let record = records
            .iter()
            .find(|r| r["kind"] == "target" && r["ip"] == ip.to_string())
            .unwrap_or_else(|| panic!("no record for {ip}"));
        // The main session (TLS 1.3) and one legacy session per older version.
        assert_eq!(record["outcome"], "starttls_ok", "{record}");
        assert_eq!(record["protocols"]["tls1_3"], "supported", "{record}");
        assert_eq!(record["protocols"]["tls1_2"], "supported", "{record}");
        assert_eq!(record["protocols"]["tls1_0"], "not_supported", "{record}");
        let mut times: Vec<_> = seen
            .iter()
            .filter(|s| s.target == *ip)
            .map(|s| s.at)
            .collect();
        times.sort();
        assert_eq!(times.len(), 5, "{ip}: main + SSLv3, TLS 1.0, 1.1, 1.2");
        // The record counts what the server saw (the report's politeness
        // and `status` add it up).
        assert_eq!(record["sessions"], 5, "{record}");
        // 1 s apart (the server stamps accepts: 100 ms of slack).
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(900),
                "{ip}: sessions {gap:?} apart"
            );
        }
    }
}
