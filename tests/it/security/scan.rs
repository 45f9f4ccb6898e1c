//! Every security lab case through a full `mxscope scan --security`, read
//! back with `mxscope export` (the stored records) and `mxscope report
//! --format json` (the security section, where MTA-STS is joined with the
//! targets). One scan per group: DNSSEC and DANE (Knot, lab MTAs), reverse
//! DNS (Knot, TEST-NET addresses never contacted), MTA-STS and TLS-RPT
//! (Unbound, nginx).

use std::collections::BTreeMap;
use std::process::Command;

use mxscope_common::record::security_dns::DnssecStatus;
use mxscope_common::record::security_policy::{MtaStsVerdict, TlsRptVerdict};
use mxscope_common::{DomainRecord, Record, TargetRecord, SCHEMA_VERSION};
use mxscope_tests::dns::knot::cases;
use mxscope_tests::lab;
use mxscope_tests::nginx::sts_domains as d;
use mxscope_tests::runs::cluster::{bin, test_dir};
use mxscope_tests::runs::report_json::distribution;

use crate::security::{dane_cases, knot_args, rdns_cases, strs, SHORT};

/// What `mxscope scan` stored, read back through `export` and `report`.
struct Scanned {
    domains: BTreeMap<String, DomainRecord>,
    targets: Vec<TargetRecord>,
    report: serde_json::Value,
}

impl Scanned {
    /// The target probed at `ip`.
    fn target(&self, ip: std::net::IpAddr) -> &TargetRecord {
        self.targets
            .iter()
            .find(|t| t.ip == ip)
            .unwrap_or_else(|| panic!("a target for {ip}: {:?}", self.targets))
    }

    /// A distribution of the report's security section as (total, the rows
    /// with a count).
    fn dist(&self, name: &str) -> (u64, BTreeMap<String, u64>) {
        distribution(&self.report["vantages"][0]["security"], name)
    }
}

fn want(rows: &[(&str, u64)]) -> BTreeMap<String, u64> {
    rows.iter().map(|(v, n)| (v.to_string(), *n)).collect()
}

/// Run `mxscope` with `args` and `data` as `--data-dir`, expect success,
/// return its standard output.
fn mxscope(args: &[&str], data: &std::path::Path) -> String {
    let out = Command::new(bin("mxscope"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run mxscope");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mxscope {args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `mxscope scan --security` of `domains` with `args` in a fresh data
/// folder named `name`, then `export s1` and `report s1 --format json`.
fn scan(name: &str, domains: &[&str], args: &[&str]) -> Scanned {
    let dir = test_dir(name);
    let list = dir.join("list.txt");
    std::fs::write(&list, domains.join("\n")).expect("write the list");
    let data = dir.join("data");
    let list = list.display().to_string();
    let ca = lab::certs().ca_pem.display().to_string();
    let mut scan_args = vec![
        "scan",
        &list,
        "--security",
        "--ehlo-name",
        "probe.mxscope.lab.test",
        "--ca-file",
        &ca,
    ];
    scan_args.extend(SHORT);
    scan_args.extend(args);
    mxscope(&scan_args, &data);

    let export = mxscope(&["export", "s1"], &data);
    let mut records = BTreeMap::new();
    let mut targets = Vec::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        match Record::from_json(line).unwrap_or_else(|e| panic!("{e}: {line}")) {
            Record::Domain(record) => {
                assert_eq!(record.schema_version, SCHEMA_VERSION);
                records.insert(record.domain.clone(), record);
            }
            Record::Target(record) => {
                assert_eq!(record.schema_version, SCHEMA_VERSION);
                targets.push(record);
            }
        }
    }
    assert_eq!(records.len(), domains.len(), "one record per domain");
    let report = mxscope(&["report", "s1", "--format", "json"], &data);
    Scanned {
        domains: records,
        targets,
        report: serde_json::from_str(&report).expect("a JSON report"),
    }
}

#[test]
fn scan_gives_every_dnssec_and_dane_verdict() {
    lab::postfix();
    let mut args = knot_args();
    args.push("--allow-private".into());
    let cases = dane_cases();
    let mut domains: Vec<&str> = cases.iter().map(|c| c.0).collect();
    domains.push(cases::SECURE_NXDOMAIN);
    let scanned = scan("security-scan-dane", &domains, &strs(&args));
    for (domain, mx, mx_status, addr_status, dane) in cases {
        let security = scanned.domains[domain]
            .security
            .as_ref()
            .expect("security facts");
        assert_eq!(security.dnssec_mx, mx_status, "MX of {domain}");
        assert_eq!(
            security.dnssec_exchanges.get(mx),
            Some(&addr_status),
            "A/AAAA of {mx}: {security:?}"
        );
        assert_eq!(
            security.mta_sts.verdict,
            MtaStsVerdict::NoMtaSts,
            "{domain}"
        );
        assert_eq!(security.tls_rpt.verdict, TlsRptVerdict::Absent, "{domain}");
        let target = scanned
            .targets
            .iter()
            .find(|t| t.mx_names.iter().any(|n| n == mx))
            .unwrap_or_else(|| panic!("{domain}: a target for {mx}"));
        let result = target
            .dane
            .get(mx)
            .unwrap_or_else(|| panic!("{domain}: DANE of {mx} in {:?}", target.dane));
        assert_eq!(result.verdict, dane, "{domain} via {mx}: {result:?}");
    }
    let nxdomain = scanned.domains[cases::SECURE_NXDOMAIN]
        .security
        .as_ref()
        .expect("security facts");
    assert_eq!(nxdomain.dnssec_mx, DnssecStatus::Secure);

    // Ten domains with MX; every MX name once per STARTTLS host (MIXED and
    // INSECURE share mx.insecure.test).
    assert_eq!(
        scanned.dist("dnssec_mx"),
        (10, want(&[("secure", 8), ("insecure", 1), ("bogus", 1)]))
    );
    assert_eq!(
        scanned.dist("dane"),
        (
            9,
            want(&[
                ("dane_valid", 2),
                ("dane_mismatch", 2),
                ("no_tlsa", 1),
                ("tlsa_lookup_failed", 2),
                ("not_applicable_insecure", 1),
                ("address_bogus", 1),
            ])
        )
    );
    // The bogus MX host is counted apart from the unsigned ones.
    assert_eq!(
        scanned.dist("dane_adoption"),
        (
            10,
            want(&[
                ("dane_valid", 2),
                ("dane_broken", 2),
                ("address_bogus", 1),
                ("no_dane", 5)
            ])
        )
    );
    // Every non-secure verdict has its reason, counted.
    assert_eq!(
        scanned.dist("dnssec_reason"),
        (2, want(&[("insecure_delegation", 1), ("ds_mismatch", 1)]))
    );
    assert_eq!(
        scanned.dist("dane_reason"),
        (
            4,
            want(&[
                ("insecure_delegation", 1),
                ("lookup_servfail", 1),
                ("ds_mismatch", 2),
            ])
        )
    );
    let check = &scanned.report["vantages"][0]["security"]["resolver_check"];
    assert_eq!(check["usable"], true, "{check}");
    assert_eq!(scanned.dist("mta_sts"), (11, want(&[("no_mta_sts", 11)])));
    assert_eq!(scanned.dist("tls_rpt"), (11, want(&[("absent", 11)])));
    let section = &scanned.report["vantages"][0]["security"];
    assert_eq!(section["domains_with_mx"], 10, "{section}");
    assert_eq!(section["mx_dnssec_signed"], 8, "{section}");
    assert_eq!(section["dane_adopted"], 4, "{section}");
    assert_eq!(section["dane_valid"], 2, "{section}");
    // Every probed loopback target has a reverse DNS verdict, counted once.
    let mut ptr = BTreeMap::new();
    for t in &scanned.targets {
        let p = t
            .ptr
            .as_ref()
            .unwrap_or_else(|| panic!("reverse DNS: {t:?}"));
        let verdict = serde_json::to_value(p.verdict).unwrap_or_default();
        *ptr.entry(verdict.as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(scanned.dist("ptr"), (ptr.values().sum(), ptr));
}

#[test]
fn scan_gives_every_reverse_dns_verdict() {
    // No --allow-private: the TEST-NET addresses stay uncontacted.
    let domains: Vec<&str> = rdns_cases().iter().map(|c| c.0).collect();
    let scanned = scan("security-scan-rdns", &domains, &strs(&knot_args()));
    for (domain, ip, verdict, names) in rdns_cases() {
        let record = &scanned.domains[domain];
        assert!(record.dns.implicit_mx, "{record:?}");
        let target = scanned.target(ip.into());
        assert_eq!(
            target.outcome,
            mxscope_common::Outcome::Skipped,
            "{target:?}"
        );
        assert!(target.dane.is_empty(), "no TLS, no DANE: {target:?}");
        let ptr = target.ptr.as_ref().expect("reverse DNS");
        assert_eq!(ptr.verdict, verdict, "{domain}: {ptr:?}");
        assert_eq!(ptr.names, names, "{domain}");
    }
    assert_eq!(
        scanned.dist("ptr"),
        (
            6,
            want(&[
                ("fcrdns_ok", 2),
                ("ptr_mismatch", 2),
                ("no_ptr", 1),
                ("lookup_failed", 1),
            ])
        )
    );
}

#[test]
fn scan_gives_every_mta_sts_and_tls_rpt_verdict() {
    lab::postfix();
    lab::nginx();
    let resolver = lab::dns().addr().to_string();
    use MtaStsVerdict::*;
    // (domain, stored policy-only verdict, TLS-RPT verdict). The resolve
    // task has no TLS facts: an enforcing policy's MX are "not probed".
    let cases = [
        (d::ENFORCE, EnforceWouldFail, TlsRptVerdict::Valid),
        (d::NOMATCH, EnforceWouldFail, TlsRptVerdict::Invalid),
        (d::BADCERT, EnforceWouldFail, TlsRptVerdict::Absent),
        (d::TESTING, Testing, TlsRptVerdict::Absent),
        (d::NONE, None, TlsRptVerdict::Absent),
        (d::NOHOST, TxtWithoutPolicy, TlsRptVerdict::Absent),
        (d::NOANSWER, TxtWithoutPolicy, TlsRptVerdict::Absent),
        (d::LARGE, PolicyFetchFailed, TlsRptVerdict::Absent),
        (d::REDIRECT, PolicyFetchFailed, TlsRptVerdict::Absent),
        (d::TWOTXT, TxtInvalid, TlsRptVerdict::Absent),
        (d::ABSENT, NoMtaSts, TlsRptVerdict::Absent),
    ];
    let domains: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let scanned = scan(
        "security-scan-sts",
        &domains,
        &["--allow-private", "--resolver", &resolver],
    );
    for (domain, stored, rpt) in cases {
        let security = scanned.domains[domain]
            .security
            .as_ref()
            .expect("security facts");
        assert_eq!(security.mta_sts.verdict, stored, "{domain}: {security:?}");
        assert_eq!(security.tls_rpt.verdict, rpt, "{domain}: {security:?}");
    }
    let enforce = &scanned.domains[d::ENFORCE]
        .security
        .as_ref()
        .expect("facts")
        .mta_sts;
    assert_eq!(enforce.txt_id.as_deref(), Some(d::TXT_ID));
    assert!(enforce.policy.is_some(), "the policy is kept: {enforce:?}");

    // The report joins the policies with the targets: ENFORCE passes,
    // NOMATCH (pattern) and BADCERT (certificates) would fail.
    assert_eq!(
        scanned.dist("mta_sts"),
        (
            11,
            want(&[
                ("enforce_ok", 1),
                ("enforce_would_fail", 2),
                ("testing", 1),
                ("none", 1),
                ("txt_without_policy", 2),
                ("policy_fetch_failed", 2),
                ("txt_invalid", 1),
                ("no_mta_sts", 1),
            ])
        )
    );
    assert_eq!(
        scanned.dist("tls_rpt"),
        (11, want(&[("valid", 1), ("invalid", 1), ("absent", 9)]))
    );
}
