//! The security checks end to end through `mxscope-worker probe --security`
//! and one small `mxscope scan --security` (a scan of every case is in
//! `scan`): DNSSEC, DANE and reverse DNS against the
//! DNSSEC lab (Knot on 127.0.0.1:5354, private root), MTA-STS and TLS-RPT
//! against the Unbound lab (5353) and nginx. Every verdict is asserted
//! exactly, on the records the binaries print.

mod dane;
mod mtasts;
mod resolvers;
mod scan;

use std::collections::BTreeMap;
use std::process::Command;

use mxscope_common::record::security_dns::{DaneVerdict, DnssecStatus, ReverseDnsVerdict};
use mxscope_common::record::security_policy::{MtaStsVerdict, TlsRptVerdict};
use mxscope_common::{DomainRecord, Record, SCHEMA_VERSION};
use mxscope_tests::dns::knot::cases;
use mxscope_tests::nginx::sts_domains as d;
use mxscope_tests::runs::cluster::{bin, test_dir};
use mxscope_tests::runs::probing::worker_bin;
use mxscope_tests::runs::report_json::distribution;
use mxscope_tests::{lab, plan};

pub(crate) const SHORT: [&str; 10] = [
    "--timeout-connect",
    "3s",
    "--timeout-greeting",
    "3s",
    "--timeout-command",
    "3s",
    "--timeout-handshake",
    "3s",
    "--timeout-session",
    "6s",
];

/// Run `mxscope-worker probe --json --security` with `args` and `domains`.
fn probe(args: &[&str], domains: &[&str]) -> BTreeMap<String, DomainRecord> {
    let out = Command::new(worker_bin())
        .args(["probe", "--json", "--security", "--timeout-dns", "2s"])
        .args(["--ehlo-name", "probe.mxscope.lab.test"])
        .args(SHORT)
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .args(args)
        .args(domains)
        .output()
        .expect("run mxscope-worker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let record: DomainRecord = serde_json::from_str(line).expect("a domain record");
            (record.domain.clone(), record)
        })
        .collect()
}

pub(crate) fn knot_args() -> Vec<String> {
    let knot = lab::knot();
    vec![
        "--resolver".into(),
        knot.addr().to_string(),
        "--trust-anchor".into(),
        knot.trust_anchor().display().to_string(),
    ]
}

pub(crate) fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every DNSSEC and DANE case of the Knot lab: (domain, MX, DNSSEC of the
/// MX RRset, DNSSEC of the MX address, DANE verdict of the MX).
pub(crate) fn dane_cases() -> Vec<(
    &'static str,
    &'static str,
    DnssecStatus,
    DnssecStatus,
    DaneVerdict,
)> {
    use DaneVerdict::*;
    use DnssecStatus::*;
    vec![
        (cases::DANE_OK, cases::MX_DANE_OK, Secure, Secure, DaneValid),
        (
            cases::DANE_BAD,
            cases::MX_DANE_BAD,
            Secure,
            Secure,
            DaneMismatch,
        ),
        (cases::DANE_TA, cases::MX_DANE_TA, Secure, Secure, DaneValid),
        (
            cases::DANE_TA_NAME,
            cases::MX_DANE_TA_NAME,
            Secure,
            Secure,
            DaneMismatch,
        ),
        (cases::NO_TLSA, cases::MX_NO_TLSA, Secure, Secure, NoTlsa),
        (
            cases::TLSA_SERVFAIL,
            cases::MX_TLSA_SERVFAIL,
            Secure,
            Secure,
            TlsaLookupFailed,
        ),
        (
            cases::TLSA_BOGUS,
            cases::MX_TLSA_BOGUS,
            Secure,
            Secure,
            TlsaLookupFailed,
        ),
        (
            cases::MIXED,
            cases::MX_INSECURE,
            Secure,
            Insecure,
            NotApplicableInsecure,
        ),
        (
            cases::INSECURE,
            cases::MX_INSECURE,
            Insecure,
            Insecure,
            NotApplicableInsecure,
        ),
        (cases::BOGUS, cases::MX_BOGUS, Bogus, Bogus, AddressBogus),
    ]
}

#[test]
fn dnssec_and_dane_through_the_cli() {
    lab::postfix();
    let mut args = knot_args();
    args.push("--allow-private".into());
    let cases = dane_cases();
    let domains: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let records = probe(&strs(&args), &domains);
    for (domain, mx, mx_status, addr_status, dane) in cases {
        let record = &records[domain];
        assert_eq!(record.schema_version, SCHEMA_VERSION);
        let security = record.security.as_ref().expect("security facts");
        assert_eq!(security.dnssec_mx, mx_status, "MX of {domain}");
        assert_eq!(
            security.dnssec_exchanges.get(mx),
            Some(&addr_status),
            "A/AAAA of {mx}: {security:?}"
        );
        // Knot publishes neither record for these names.
        assert_eq!(security.mta_sts.verdict, MtaStsVerdict::NoMtaSts);
        assert_eq!(security.tls_rpt.verdict, TlsRptVerdict::Absent);
        let target = record
            .targets
            .iter()
            .find(|t| t.mx_names.iter().any(|n| n == mx))
            .unwrap_or_else(|| panic!("{domain}: a target for {mx}"));
        let result = target
            .dane
            .get(mx)
            .unwrap_or_else(|| panic!("{domain}: DANE of {mx} in {:?}", target.dane));
        assert_eq!(result.verdict, dane, "{domain} via {mx}: {result:?}");
        if dane == DaneVerdict::DaneValid || dane == DaneVerdict::DaneMismatch {
            assert!(
                !result.tlsa.is_empty(),
                "{domain}: the TLSA records are kept"
            );
        }
        // Loopback reverse lookups never leave hickory; a verdict is recorded.
        assert!(target.ptr.is_some(), "{domain}: {target:?}");
    }
}

/// Every reverse DNS case with its verdict and PTR names: (domain, IP,
/// verdict, names). The domains have no MX, their A is the MX (implicit).
pub(crate) fn rdns_cases() -> Vec<(&'static str, [u8; 4], ReverseDnsVerdict, Vec<&'static str>)> {
    use ReverseDnsVerdict::*;
    vec![
        (
            cases::RDNS_OK,
            cases::PTR_OK,
            FcrdnsOk,
            vec![cases::RDNS_OK],
        ),
        (
            cases::RDNS_TWO,
            cases::PTR_TWO,
            FcrdnsOk,
            vec![cases::RDNS_NOWHERE, cases::RDNS_TWO],
        ),
        (
            cases::RDNS_MISMATCH,
            cases::PTR_DANGLING,
            PtrMismatch,
            vec![cases::RDNS_DANGLING],
        ),
        (
            cases::RDNS_ELSEWHERE,
            cases::PTR_ELSEWHERE,
            PtrMismatch,
            vec![cases::MX_DANE_BAD],
        ),
        (cases::RDNS_NONE, cases::PTR_NONE, NoPtr, vec![]),
        (cases::RDNS_FAIL, cases::PTR_SERVFAIL, LookupFailed, vec![]),
    ]
}

#[test]
fn reverse_dns_through_the_cli() {
    // Without --allow-private the TEST-NET addresses are never contacted:
    // the targets are skipped, their reverse DNS is still checked.
    let mut domains: Vec<&str> = rdns_cases().iter().map(|c| c.0).collect();
    domains.push(cases::SECURE_NXDOMAIN);
    let records = probe(&strs(&knot_args()), &domains);
    for (domain, ip, verdict, names) in rdns_cases() {
        let record = &records[domain];
        assert!(record.dns.implicit_mx, "{record:?}");
        assert_eq!(record.targets.len(), 1, "{record:?}");
        let target = &record.targets[0];
        assert_eq!(target.ip, std::net::IpAddr::from(ip));
        assert_eq!(target.outcome, mxscope_common::Outcome::Skipped);
        assert!(target.dane.is_empty(), "no TLS, no DANE: {target:?}");
        let ptr = target.ptr.as_ref().expect("reverse DNS");
        assert_eq!(ptr.verdict, verdict, "{domain}: {ptr:?}");
        assert_eq!(ptr.names, names, "{domain}");
    }
    // A proven NXDOMAIN is secure.
    let security = records[cases::SECURE_NXDOMAIN]
        .security
        .as_ref()
        .expect("security facts");
    assert_eq!(security.dnssec_mx, DnssecStatus::Secure);
    assert!(security.dnssec_exchanges.is_empty());
}

#[test]
fn mta_sts_and_tls_rpt_through_the_cli() {
    lab::postfix();
    lab::nginx();
    // The lab's Unbound (unsigned lab.test), then the validating Unbound in
    // front of Knot's signed copy of it: the same verdicts.
    let anchor = vec![
        "--trust-anchor".to_string(),
        lab::knot().trust_anchor().display().to_string(),
    ];
    for (resolver, extra, signed) in [
        (lab::dns().addr().to_string(), Vec::new(), false),
        (lab::validating_resolver().addr().to_string(), anchor, true),
    ] {
        let domains = [
            d::ENFORCE,
            d::NOMATCH,
            d::BADCERT,
            d::TESTING,
            d::NONE,
            d::NOHOST,
            d::NOANSWER,
            d::LARGE,
            d::REDIRECT,
            d::TWOTXT,
            d::ABSENT,
        ];
        let mut args = vec!["--allow-private", "--resolver", &resolver];
        args.extend(extra.iter().map(String::as_str));
        let records = probe(&args, &domains);
        use MtaStsVerdict::*;
        for (domain, want) in [
            (d::ENFORCE, EnforceOk),
            (d::NOMATCH, EnforceWouldFail),
            (d::BADCERT, EnforceWouldFail),
            (d::TESTING, Testing),
            (d::NONE, None),
            (d::NOHOST, TxtWithoutPolicy),
            (d::NOANSWER, TxtWithoutPolicy),
            (d::LARGE, PolicyFetchFailed),
            (d::REDIRECT, PolicyFetchFailed),
            (d::TWOTXT, TxtInvalid),
            (d::ABSENT, NoMtaSts),
        ] {
            let security = records[domain].security.as_ref().expect("security facts");
            assert_eq!(security.mta_sts.verdict, want, "{domain}: {security:?}");
            if signed {
                // Knot's signed lab.test through the validating Unbound.
                assert_eq!(security.dnssec_mx, DnssecStatus::Secure, "{domain}");
            } else {
                // lab.test is unsigned under a root the IANA anchor cannot reach.
                assert_ne!(security.dnssec_mx, DnssecStatus::Secure, "{domain}");
            }
        }
        let enforce = &records[d::ENFORCE]
            .security
            .as_ref()
            .expect("facts")
            .mta_sts;
        assert_eq!(enforce.txt_id.as_deref(), Some(d::TXT_ID));
        assert_eq!(enforce.per_mx.len(), 1);
        assert_eq!(enforce.per_mx[0].certificate_ok, Some(true));
        let badcert = &records[d::BADCERT]
            .security
            .as_ref()
            .expect("facts")
            .mta_sts;
        assert_eq!(
            badcert.detail.as_deref(),
            Some("2 of 2 MX would be refused")
        );
        let large = &records[d::LARGE].security.as_ref().expect("facts").mta_sts;
        assert_eq!(
            large.detail.as_deref(),
            Some("policy larger than 65536 bytes")
        );

        let rpt = |domain: &str| {
            records[domain]
                .security
                .as_ref()
                .expect("facts")
                .tls_rpt
                .clone()
        };
        let present = rpt(d::ENFORCE);
        assert_eq!(present.verdict, TlsRptVerdict::Valid, "{present:?}");
        assert!(present.present);
        assert_eq!(present.rua, d::RUA.to_vec());
        let absent = rpt(d::TESTING);
        assert_eq!(absent.verdict, TlsRptVerdict::Absent, "{absent:?}");
        assert!(!absent.present);
        let invalid = rpt(d::NOMATCH);
        assert_eq!(invalid.verdict, TlsRptVerdict::Invalid, "{invalid:?}");
        assert_eq!(rpt(d::ABSENT).verdict, TlsRptVerdict::Absent);
    }
}

#[test]
fn scan_records_carry_the_security_fields() {
    lab::postfix();
    let knot = lab::knot();
    let dir = test_dir("security-scan");
    let list = dir.join("sec.txt");
    std::fs::write(&list, [cases::DANE_OK, cases::INSECURE].join("\n")).unwrap();
    let data = dir.join("data");
    let out = Command::new(bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args(["--allow-private", "--security"])
        .args(["--ehlo-name", "probe.mxscope.lab.test"])
        .args(SHORT)
        .args(["--resolver", &knot.addr().to_string()])
        .arg("--trust-anchor")
        .arg(knot.trust_anchor())
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let export = Command::new(bin("mxscope"))
        .args(["export", "s1", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(
        export.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let mut domains = BTreeMap::new();
    let mut targets = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match Record::from_json(line).unwrap_or_else(|e| panic!("{e}: {line}")) {
            Record::Domain(record) => {
                assert_eq!(record.schema_version, 2);
                domains.insert(record.domain.clone(), record);
            }
            Record::Target(record) => {
                assert_eq!(record.schema_version, 2);
                targets.push(record);
            }
        }
    }
    let dane_ok = domains[cases::DANE_OK].security.as_ref().expect("security");
    assert_eq!(dane_ok.dnssec_mx, DnssecStatus::Secure);
    assert_eq!(
        dane_ok.dnssec_exchanges.get(cases::MX_DANE_OK),
        Some(&DnssecStatus::Secure)
    );
    assert_eq!(dane_ok.mta_sts.verdict, MtaStsVerdict::NoMtaSts);
    assert_eq!(dane_ok.tls_rpt.verdict, TlsRptVerdict::Absent);
    let insecure = domains[cases::INSECURE]
        .security
        .as_ref()
        .expect("security");
    assert_eq!(insecure.dnssec_mx, DnssecStatus::Insecure);
    // Both domains' MX share the lab Postfix mx-valid.
    let target = targets
        .iter()
        .find(|t| t.ip == plan::MX_VALID.ip)
        .unwrap_or_else(|| panic!("a target for mx-valid: {targets:?}"));
    assert_eq!(
        target.dane.get(cases::MX_DANE_OK).map(|r| r.verdict),
        Some(DaneVerdict::DaneValid),
        "{target:?}"
    );
    assert_eq!(
        target.dane.get(cases::MX_INSECURE).map(|r| r.verdict),
        Some(DaneVerdict::NotApplicableInsecure),
        "{target:?}"
    );
    assert!(target.ptr.is_some(), "{target:?}");

    // The report's security section over the same records.
    let report = Command::new(bin("mxscope"))
        .args(["report", "s1", "--format", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{json}\n{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&json).expect("a JSON report");
    let section = &report["vantages"][0]["security"];
    assert_eq!(section["domains_with_mx"], 2, "{section}");
    assert_eq!(section["mx_dnssec_signed"], 1, "{section}");
    assert_eq!(section["dane_adopted"], 1, "{section}");
    assert_eq!(section["dane_valid"], 1, "{section}");
    let dist = |name: &str| distribution(section, name);
    let want = |rows: &[(&str, u64)]| -> BTreeMap<String, u64> {
        rows.iter().map(|(v, n)| (v.to_string(), *n)).collect()
    };
    assert_eq!(
        dist("dnssec_mx"),
        (2, want(&[("secure", 1), ("insecure", 1)]))
    );
    // One STARTTLS host (mx-valid) named by both MX.
    assert_eq!(
        dist("dane"),
        (
            2,
            want(&[("dane_valid", 1), ("not_applicable_insecure", 1)])
        )
    );
    assert_eq!(
        dist("dane_adoption"),
        (2, want(&[("dane_valid", 1), ("no_dane", 1)]))
    );
    assert_eq!(dist("mta_sts"), (2, want(&[("no_mta_sts", 2)])));
    assert_eq!(dist("tls_rpt"), (2, want(&[("absent", 2)])));
    let mut ptr = BTreeMap::new();
    for t in &targets {
        if let Some(p) = &t.ptr {
            let verdict = serde_json::to_value(p.verdict).unwrap_or_default();
            *ptr.entry(verdict.as_str().unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(dist("ptr"), (ptr.values().sum(), ptr));
}
