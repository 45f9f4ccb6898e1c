//! Vantages that disagree about DNS, and an on-path interceptor, with real
//! processes: a coordinator, worker a resolving through the true copy of
//! the zones, worker b through a tampered copy and behind an nftables
//! man in the middle (see `mxscope_tests::dns::vantage`). Every class comes
//! out of `mxscope vantages` and `mxscope report`, and nothing else is
//! flagged.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use mxscope_coordinator::model::{ScanOptions, ScanState};
use mxscope_tests::dns::vantage::{cases::*, *};
use mxscope_tests::lab;
use mxscope_tests::plan::SMTP_PORT;
use mxscope_tests::runs::cluster::*;
use serde_json::Value;

fn options(trust_anchor: String) -> ScanOptions {
    ScanOptions {
        ehlo_name: "probe.mxscope.lab.test".into(),
        port: SMTP_PORT,
        timeout_session_ms: 10_000,
        timeout_greeting_ms: 5_000,
        timeout_command_ms: 5_000,
        timeout_connect_ms: 2_000,
        resolvers: vec![VANTAGE_DNS_A.to_string()],
        ca_pem: Some(std::fs::read_to_string(&lab::certs().ca_pem).unwrap()),
        allow_private: true,
        security: true,
        trust_anchor_pem: Some(trust_anchor),
        ..ScanOptions::default()
    }
}

/// `mxscope ARGS` with `source` (`--coordinator URL` or `--data-dir DIR`).
fn mxscope(args: &[&str], source: &[&str]) -> String {
    let out = std::process::Command::new(bin("mxscope"))
        .args(args)
        .args(source)
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mxscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// (key, classes) of every entry of a diff list.
fn classes(list: &Value, key: &str) -> BTreeMap<String, Vec<String>> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| (d[key].as_str().unwrap().to_string(), strs(&d["classes"])))
        .collect()
}

fn ip(host: &mxscope_tests::plan::Host) -> String {
    host.ip.to_string()
}

fn want(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    rows.iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn vantages_disagree_about_dns_and_tls() {
    lab::postfix();
    let dir = test_dir("vantage-dns");
    let dns = VantageDns::start(&dir.join("dns"), lab::certs()).unwrap();
    let _interceptor = Interceptor::start().unwrap();
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "10s").unwrap();
    let source = IpAddr::V4;
    let mut a = WorkerProcess::start(
        &coordinator.url,
        "a",
        source(VANTAGE_DNS_A_SOURCE),
        "worker-a",
        &dir,
    )
    .unwrap();
    let mut b = WorkerProcess::start_with(
        &coordinator.url,
        "b",
        source(VANTAGE_DNS_B_SOURCE),
        "worker-b",
        &dir,
        &["--resolver".into(), VANTAGE_DNS_B.into()],
    )
    .unwrap();
    let mut admin = coordinator.admin().await;
    let anchor = std::fs::read_to_string(dns.trust_anchor()).unwrap();
    let scan = admin
        .submit(
            "vantage-dns".into(),
            BTreeMap::new(),
            vec!["a".into(), "b".into()],
            &options(anchor),
            false,
            ALL.iter().map(|d| d.to_string()).collect(),
        )
        .await
        .expect("submit")
        .scan_id;
    wait_for(Duration::from_secs(90), "the scan to finish", || {
        let mut admin = admin.clone();
        let scan = scan.clone();
        async move {
            let status = admin.status(&scan).await.ok()?;
            (status.meta.state == ScanState::Done).then_some(())
        }
    })
    .await;
    a.terminate();
    b.terminate();

    let remote = ["--coordinator", coordinator.url.as_str()];
    let json = mxscope(&["vantages", &scan, "--format", "json"], &remote);
    let report: Value = serde_json::from_str(&json).unwrap();

    // DNS: one class per tampered domain, the untampered ones agree.
    assert_eq!(
        classes(&report["dns_diffs"], "domain"),
        want(&[
            (GONE, &["dns_status_differs"]),
            (MOVED, &["address_differs"]),
            (STRIP, &["dnssec_differs"]),
            (SWAP, &["mx_differs"]),
        ]),
        "{json}"
    );
    assert_eq!(report["dns_domains_compared"], ALL.len() as u64);
    let moved = report["dns_diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == MOVED)
        .unwrap();
    let b_note = moved["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["vantage"] == "b")
        .unwrap_or_else(|| panic!("a note on b's address: {moved}"));
    assert_eq!(b_note["address"], MOVED_ADDRESS.to_string());
    assert_eq!(b_note["outside_networks"], true);
    let strip = report["dns_diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == STRIP)
        .unwrap();
    assert_eq!(strip["views"]["a"]["dnssec_mx"], "secure");
    assert_eq!(strip["views"]["b"]["dnssec_mx"], "bogus");

    // Targets: the intercepted DANE host and the TLSA that differs; the
    // stripped zone's host loses DANE from b (its addresses are no longer
    // secure there), a consequence of the same tampering.
    assert_eq!(
        classes(&report["diffs"], "ip"),
        want(&[
            (&ip(&DANE_HOST), &["tls_intercepted", "dane_differs"]),
            (&ip(&STRIP_HOST), &["dane_differs"]),
            (&ip(&TLSA_HOST), &["dane_differs", "tlsa_differs"]),
        ]),
        "{json}"
    );
    let intercepted = report["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ip"] == ip(&DANE_HOST))
        .unwrap();
    assert_ne!(
        intercepted["views"]["a"]["certificate_sha256"],
        intercepted["views"]["b"]["certificate_sha256"]
    );

    // Targets that one vantage alone probed, with the domains behind them.
    let one: BTreeMap<String, (String, Vec<String>)> = report["one_vantage_targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["ip"].as_str().unwrap().to_string(),
                (
                    t["vantage"].as_str().unwrap().to_string(),
                    strs(&t["domains"]),
                ),
            )
        })
        .collect();
    let entry = |v: &str, d: &str| (v.to_string(), vec![d.to_string()]);
    assert_eq!(
        one,
        BTreeMap::from([
            (ip(&SWAP_HOST), entry("a", SWAP)),
            (ip(&SWAP_EVIL_HOST), entry("b", SWAP)),
            (ip(&MOVED_HOST), entry("a", MOVED)),
            (MOVED_ADDRESS.to_string(), entry("b", MOVED)),
            (ip(&GONE_HOST), entry("a", GONE)),
        ]),
        "{json}"
    );

    // The offline report (merge-joined store streams) says the same.
    drop(coordinator);
    let data = dir.join("data");
    let offline = ["--data-dir", data.to_str().unwrap()];
    let local: Value =
        serde_json::from_str(&mxscope(&["vantages", &scan, "--format", "json"], &offline)).unwrap();
    assert_eq!(local, report, "offline and remote vantages reports differ");
    let text = mxscope(&["vantages", &scan], &offline);
    println!("{text}");
    assert!(text.contains(&format!("{SWAP}: mx_differs")), "{text}");
    assert!(
        text.contains("Targets probed from one vantage only"),
        "{text}"
    );

    // The main report's agreement section, in JSON and text.
    let main: Value =
        serde_json::from_str(&mxscope(&["report", &scan, "--format", "json"], &offline)).unwrap();
    let agreement = &main["agreement"];
    assert_eq!(agreement["domains_compared"], ALL.len() as u64);
    // AGREE and SAME agree everywhere; every other domain is behind a class.
    assert_eq!(agreement["domains_agreeing"], 2, "{agreement}");
    let members: BTreeMap<String, Vec<String>> =
        serde_json::from_value(agreement["members"].clone()).unwrap();
    assert_eq!(
        members,
        want(&[
            ("address_differs", &[MOVED]),
            (
                "dane_differs",
                &[&ip(&TLSA_HOST), &ip(&STRIP_HOST), &ip(&DANE_HOST)]
            ),
            ("dns_status_differs", &[GONE]),
            ("dnssec_differs", &[STRIP]),
            ("mx_differs", &[SWAP]),
            ("tls_intercepted", &[&ip(&DANE_HOST)]),
            ("tlsa_differs", &[&ip(&TLSA_HOST)]),
        ])
    );
    assert_eq!(agreement["one_vantage_targets"], 5);
    let text = mxscope(&["report", &scan], &offline);
    println!("{text}");
    assert!(text.contains("Vantage agreement"), "{text}");
    assert!(
        text.contains(&format!("tls_intercepted: 1 ({})", ip(&DANE_HOST))),
        "{text}"
    );
    let md = mxscope(&["report", &scan, "--format", "markdown"], &offline);
    assert!(md.contains("## Vantage agreement"), "{md}");
    let html = mxscope(&["report", &scan, "--format", "html"], &offline);
    assert!(html.contains("Vantage agreement"));
    assert!(html.contains("tls_intercepted"));
    let html = mxscope(&["vantages", &scan, "--format", "html"], &offline);
    assert!(html.contains("Domains whose DNS differs"), "{html}");
    assert!(html.contains(MOVED_ADDRESS.to_string().as_str()));
    let md = mxscope(&["vantages", &scan, "--format", "markdown"], &offline);
    assert!(md.contains(&format!("## {STRIP}: dnssec_differs")), "{md}");

    // `compare` carries the agreement figures.
    let compared: Value = serde_json::from_str(&mxscope(
        &["compare", &scan, &scan, "--format", "json"],
        &offline,
    ))
    .unwrap();
    assert_eq!(compared["scans"][1]["agreement"], *agreement);
    let text = mxscope(&["compare", &scan, &scan], &offline);
    assert!(text.contains("Vantage agreement"), "{text}");
    assert!(
        text.contains("domains on which all vantages agree"),
        "{text}"
    );
}
