//! DNSSEC and DANE verdicts through the resolvers users really have:
//! Unbound validating from the lab's private root (every case keeps its
//! verdict), a forwarder that strips DNSSEC records and an
//! authoritative-only server (every verdict `indeterminate` with its
//! reason, the self-check warning said once, never `bogus`), and the
//! self-check's other failures (wrong anchor, a resolver that never answers).

use std::collections::BTreeMap;
use std::process::Command;

use mxscope_common::record::security_dns::{DaneVerdict, DnssecReason, DnssecStatus};
use mxscope_common::{DnsStatus, DomainRecord, Record};
use mxscope_tests::dns::knot::cases;
use mxscope_tests::runs::cluster::{bin, test_dir};
use mxscope_tests::runs::probing::worker_bin;
use mxscope_tests::runs::report_json::distribution;
use mxscope_tests::{lab, plan};

use crate::security::{dane_cases, SHORT};

/// What the self-check says when the resolvers cannot validate.
const WARNING: &str = "cannot support DNSSEC validation";

/// `mxscope-worker probe --json --security` through `resolver`: the
/// records by domain and the standard error.
fn probe(
    resolver: &str,
    args: &[&str],
    domains: &[&str],
) -> (BTreeMap<String, DomainRecord>, String) {
    let out = Command::new(worker_bin())
        .args(["probe", "--json", "--security", "--timeout-dns", "1s"])
        .args([
            "--ehlo-name",
            "probe.mxscope.lab.test",
            "--resolver",
            resolver,
        ])
        .args(SHORT)
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .args(args)
        .args(domains)
        .output()
        .expect("run mxscope-worker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let records = stdout
        .lines()
        .map(|line| {
            let record: DomainRecord = serde_json::from_str(line).expect("a domain record");
            (record.domain.clone(), record)
        })
        .collect();
    (records, stderr)
}

fn anchor() -> String {
    lab::knot().trust_anchor().display().to_string()
}

#[test]
fn through_the_validating_resolver_every_case_keeps_its_verdict() {
    lab::postfix();
    let resolver = lab::validating_resolver().addr().to_string();
    let anchor = anchor();
    let cases = dane_cases();
    let domains: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let (records, stderr) = probe(
        &resolver,
        &[
            "--trust-anchor",
            &anchor,
            "--allow-private",
            "--dnssec-check-name",
            "sec.test",
        ],
        &domains,
    );
    assert!(!stderr.contains(WARNING), "{stderr}");
    let checks: Vec<_> = records
        .values()
        .filter_map(|r| r.security.as_ref()?.resolver_check.clone())
        .collect();
    assert_eq!(checks.len(), 1, "the first record carries the check");
    assert!(
        checks[0].usable && checks[0].ad && checks[0].tcp,
        "{:?}",
        checks[0]
    );
    assert_eq!(checks[0].signed_name_rrsig, Some(true));
    for (domain, mx, mx_status, addr_status, dane) in cases {
        let record = &records[domain];
        let security = record.security.as_ref().expect("security facts");
        assert_eq!(security.dnssec_mx, mx_status, "MX of {domain}");
        if domain == cases::BOGUS {
            // The validating Unbound answers SERVFAIL to the bogus MX RRset
            // (as it would to an MTA): no exchange is resolved, mxscope
            // still says why the RRset is bogus.
            assert_eq!(record.dns.status, DnsStatus::Servfail, "{record:?}");
            assert_eq!(security.dnssec_mx_reason, Some(DnssecReason::DsMismatch));
            continue;
        }
        assert_eq!(
            security.dnssec_exchanges.get(mx),
            Some(&addr_status),
            "A/AAAA of {mx}: {security:?}"
        );
        let target = record
            .targets
            .iter()
            .find(|t| t.mx_names.iter().any(|n| n == mx))
            .unwrap_or_else(|| panic!("{domain}: a target for {mx}"));
        let result = &target.dane[mx];
        assert_eq!(result.verdict, dane, "{domain} via {mx}: {result:?}");
        if domain == cases::TLSA_BOGUS {
            assert_eq!(result.reason, Some(DnssecReason::DsMismatch), "{result:?}");
        }
        if domain == cases::TLSA_SERVFAIL {
            assert_eq!(
                result.reason,
                Some(DnssecReason::LookupServfail),
                "{result:?}"
            );
        }
    }
}

/// Every domain's DNSSEC verdicts and DANE verdicts are indeterminate with
/// `reason`, none is bogus.
fn assert_all_indeterminate(records: &BTreeMap<String, DomainRecord>, reason: DnssecReason) {
    for (domain, record) in records {
        let security = record.security.as_ref().expect("security facts");
        assert_eq!(
            (security.dnssec_mx, security.dnssec_mx_reason),
            (DnssecStatus::Indeterminate, Some(reason)),
            "MX of {domain}"
        );
        for (mx, status) in &security.dnssec_exchanges {
            assert_eq!(*status, DnssecStatus::Indeterminate, "{domain}: {mx}");
            assert_eq!(security.dnssec_exchange_reasons.get(mx), Some(&reason));
        }
        for target in &record.targets {
            for (mx, result) in &target.dane {
                assert_eq!(
                    (result.verdict, result.reason),
                    (DaneVerdict::TlsaLookupFailed, Some(reason)),
                    "{domain} via {mx}"
                );
            }
        }
    }
}

#[test]
fn through_the_stripping_forwarder_verdicts_are_indeterminate() {
    lab::postfix();
    let resolver = lab::stripping_resolver().addr().to_string();
    let anchor = anchor();
    let domains: Vec<&str> = dane_cases().iter().map(|c| c.0).collect();
    let (records, stderr) = probe(
        &resolver,
        &["--trust-anchor", &anchor, "--allow-private"],
        &domains,
    );
    assert_eq!(records.len(), domains.len());
    assert_all_indeterminate(&records, DnssecReason::DnssecRecordsStripped);
    // The MX were resolved and probed: DANE had chains to judge.
    let pairs: usize = records
        .values()
        .flat_map(|r| r.targets.iter())
        .map(|t| t.dane.len())
        .sum();
    assert!(pairs >= 9, "{records:?}");
    assert_eq!(stderr.matches(WARNING).count(), 1, "said once: {stderr}");
    assert!(stderr.contains("dnssec_records_stripped"), "{stderr}");
}

#[test]
fn the_self_check_names_each_failure() {
    // The IANA anchor against the lab's private root.
    let validating = lab::validating_resolver().addr().to_string();
    let (records, stderr) = probe(&validating, &[], &[cases::DANE_OK]);
    assert_all_indeterminate(&records, DnssecReason::AnchorMismatch);
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");
    // A resolver that never answers (UDP or TCP).
    // A free UDP port whose TCP twin is free too (another test's
    // connection may hold the TCP port of a random UDP one: try again).
    let (_udp, _tcp, addr) = (0..50)
        .find_map(|_| {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            let addr = udp.local_addr().ok()?;
            let tcp = std::net::TcpListener::bind(addr).ok()?;
            Some((udp, tcp, addr))
        })
        .expect("a silent UDP socket and TCP listener on one port");
    let (records, stderr) = probe(&addr.to_string(), &[], &[cases::DANE_OK]);
    let security = records[cases::DANE_OK].security.as_ref().expect("facts");
    assert_eq!(
        (security.dnssec_mx, security.dnssec_mx_reason),
        (
            DnssecStatus::Indeterminate,
            Some(DnssecReason::LookupTimeout)
        )
    );
    let check = security.resolver_check.as_ref().expect("the check");
    assert!(!check.usable && !check.tcp, "{check:?}");
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");
}

/// `mxscope` with `args`: (stdout, stderr), expecting success.
fn mxscope(args: &[&str], data: &std::path::Path) -> (String, String) {
    let out = Command::new(bin("mxscope"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run mxscope");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "mxscope {args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// `mxscope scan --security` of `domains` through `resolver` with `extra`
/// flags, in a data directory of its own under `name`: (data dir, stderr).
fn scan_security(
    name: &str,
    domains: &[String],
    resolver: &str,
    extra: &[&str],
) -> (std::path::PathBuf, String) {
    let dir = test_dir(name);
    let list = dir.join("list.txt");
    std::fs::write(&list, domains.join("\n")).expect("write the list");
    let data = dir.join("data");
    let list = list.display().to_string();
    let ca = lab::certs().ca_pem.display().to_string();
    let mut args = vec![
        "scan",
        &list,
        "--security",
        "--allow-private",
        "--ehlo-name",
        "probe.mxscope.lab.test",
        "--ca-file",
        &ca,
        "--resolver",
        resolver,
    ];
    args.extend(SHORT);
    args.extend(extra);
    let (_, stderr) = mxscope(&args, &data);
    (data, stderr)
}

/// `--dnssec-check-name` is a probe option of `mxscope scan` too: it travels
/// with the scan's options to the fleet worker, whose self-check asks the
/// signed name, and the record (and the report) name it.
#[test]
fn the_scan_self_check_asks_the_signed_name() {
    lab::postfix();
    let resolver = lab::validating_resolver().addr().to_string();
    let anchor = anchor();
    let cases = dane_cases();
    let domains: Vec<String> = cases.iter().take(2).map(|c| c.0.to_string()).collect();
    let extra = ["--trust-anchor", &anchor, "--dnssec-check-name", "sec.test"];
    let (data, stderr) = scan_security("security-check-name", &domains, &resolver, &extra);
    assert!(!stderr.contains(WARNING), "{stderr}");

    let (export, _) = mxscope(&["export", "s1"], &data);
    let checks: Vec<_> = export
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| match Record::from_json(line).expect("a record") {
            Record::Domain(record) => record.security?.resolver_check,
            Record::Target(_) => None,
        })
        .collect();
    assert_eq!(checks.len(), 1, "one check per scan and worker: {checks:?}");
    let check = &checks[0];
    assert!(check.usable, "{check:?}");
    assert_eq!(
        check
            .signed_name
            .as_deref()
            .map(|n| n.trim_end_matches('.')),
        Some("sec.test"),
        "{check:?}"
    );
    assert_eq!(check.signed_name_rrsig, Some(true), "{check:?}");

    let (json, _) = mxscope(&["report", "s1", "--format", "json"], &data);
    let report: serde_json::Value = serde_json::from_str(&json).expect("a JSON report");
    let check = &report["vantages"][0]["security"]["resolver_check"];
    assert_eq!(check["signed_name_rrsig"], true, "{check}");
    assert!(
        check["signed_name"]
            .as_str()
            .is_some_and(|n| n.trim_end_matches('.') == "sec.test"),
        "{check}"
    );
}

#[test]
fn an_unsigned_zone_behind_an_authoritative_only_resolver_is_never_bogus() {
    lab::postfix();
    // The lab's Unbound serves lab.test and refuses everything else,
    // the root's DNSKEY included; the IANA anchor is the default.
    let resolver = lab::dns().addr().to_string();
    let d = &plan::domains::for_host;
    let domains = [
        d(&plan::MX_VALID),
        d(&plan::MX_ECDSA),
        d(&plan::MX_SELFSIGNED),
        d(&plan::MX_EXPIRED),
        plan::domains::MULTI.to_string(),
        plan::domains::SINGLE.to_string(),
        plan::domains::IMPLICIT.to_string(),
    ];
    let (data, stderr) = scan_security("security-authoritative-only", &domains, &resolver, &[]);
    assert_eq!(stderr.matches(WARNING).count(), 1, "said once: {stderr}");

    let (export, _) = mxscope(&["export", "s1"], &data);
    let mut records = BTreeMap::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        if let Record::Domain(record) = Record::from_json(line).expect("a record") {
            records.insert(record.domain.clone(), record);
        }
    }
    assert_eq!(records.len(), domains.len());
    assert_all_indeterminate(&records, DnssecReason::AnchorDnskeyUnavailable);

    let (json, _) = mxscope(&["report", "s1", "--format", "json"], &data);
    let report: serde_json::Value = serde_json::from_str(&json).expect("a JSON report");
    let section = &report["vantages"][0]["security"];
    assert_eq!(section["resolver_check"]["usable"], false, "{section}");
    assert_eq!(section["dane_adoption_excluded"], true, "{section}");
    assert_eq!(distribution(section, "dane_adoption").0, 0, "{section}");
    let n = domains.len() as u64;
    assert_eq!(
        distribution(section, "dnssec_mx"),
        (n, [("indeterminate".to_string(), n)].into())
    );
    assert_eq!(
        distribution(section, "dnssec_reason"),
        (n, [("anchor_dnskey_unavailable".to_string(), n)].into())
    );
    let (text, _) = mxscope(&["report", "s1"], &data);
    assert_eq!(text.matches("Warning: ").count(), 1, "{text}");
    assert!(
        text.contains(WARNING) && text.contains("indeterminate"),
        "{text}"
    );
    let top: Vec<&str> = text.lines().take(4).collect();
    assert!(
        top.iter().any(|l| l.starts_with("Warning: ")),
        "at the top: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_over_the_coordinator_shows_the_self_check_and_the_sessions() {
    use mxscope_coordinator::model::ScanState;
    use mxscope_tests::runs::cluster::{wait_for, CoordinatorProcess, WorkerProcess, ADMIN_TOKEN};
    use std::time::Duration;

    lab::postfix();
    let dir = test_dir("security-status-remote");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "10s").expect("coordinator");
    let list = dir.join("list.txt");
    let domains = [
        plan::domains::for_host(&plan::MX_VALID),
        plan::domains::SINGLE.to_string(),
    ];
    std::fs::write(&list, domains.join("\n")).expect("write the list");
    // The lab's authoritative-only Unbound: the root's DNSKEY is REFUSED.
    let resolver = lab::dns().addr().to_string();
    let ca = lab::certs().ca_pem.display().to_string();
    let submit = Command::new(bin("mxscope"))
        .arg("submit")
        .arg(&list)
        .args(["--vantage", "V", "--security", "--allow-private"])
        .args(["--resolver", &resolver, "--ca-file", &ca])
        .args(["--coordinator", &coordinator.url])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run mxscope submit");
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let bind = "127.0.2.98".parse().expect("an address");
    let _worker =
        WorkerProcess::start(&coordinator.url, "V", bind, "status-w", &dir).expect("worker");
    let admin = coordinator.admin().await;
    wait_for(Duration::from_secs(90), "the scan to finish", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.status("s1").await.ok()?;
            (status.meta.state == ScanState::Done).then_some(())
        }
    })
    .await;

    let status = |json: bool| {
        let out = Command::new(bin("mxscope"))
            .args(["status", "s1", "--coordinator", &coordinator.url])
            .args(json.then_some("--json"))
            .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("run mxscope status");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let text = status(false);
    assert_eq!(text.matches("vantage V: Warning: ").count(), 1, "{text}");
    assert!(
        text.contains(WARNING) && text.contains("anchor_dnskey_unavailable"),
        "{text}"
    );
    assert!(
        text.contains("vantage V: ") && text.contains("SMTP sessions to "),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(status(true).trim()).expect("JSON");
    let check = &json["resolver_checks"]["V"];
    assert_eq!(check["usable"], false, "{json}");
    assert_eq!(check["reason"], "anchor_dnskey_unavailable", "{json}");
    let politeness = &json["politeness"]["V"];
    // Every MX address was probed: at least one session each, none excluded.
    assert!(
        politeness["sessions"].as_u64() >= json["target_records"].as_u64(),
        "{json}"
    );
    assert_eq!(
        politeness["targets_contacted"], json["target_records"],
        "{json}"
    );
    assert_eq!(politeness["excluded_targets"], 0, "{json}");
    // The same tally offline, from the data directory.
    drop(_worker);
    drop(coordinator);
    let out = Command::new(bin("mxscope"))
        .args(["status", "s1", "--json", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .expect("run mxscope status --data-dir");
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON from the data directory: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(offline["politeness"], json["politeness"]);
    assert_eq!(offline["resolver_checks"], json["resolver_checks"]);
}
