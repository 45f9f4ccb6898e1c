//! `--tls-depth` against the lab's real Postfix hosts (DESIGN §4 "TLS
//! depth, paid in sessions"), with sslyze (PyPI, installed by
//! `tests/lab/install.sh`) as the oracle for accepted suites per version.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::findings::FindingId;
use mxscope_common::{DepthLevel, SuiteClass, TargetRecord, Tested};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::probing::{config, lab_tls};
use mxscope_tests::runs::sslyze::Oracle;
use mxscope_worker::probe::pace::SessionPace;
use mxscope_worker::probe::Prober;

async fn probe(host: Host, level: DepthLevel) -> TargetRecord {
    let mut config = config(None, true);
    config.depth = level;
    let tls = lab_tls();
    Prober::new(config, tls)
        .with_pace(Arc::new(Gap))
        .probe_target(host.ip, vec![host.name.to_string()])
        .await
}

/// A short gap before each extra session, as the fleet's per-IP gap does
/// (shorter, for the test's time): Exim counts a dropped session's child
/// for a moment and refuses a 21st at once.
#[derive(Debug)]
struct Gap;

impl SessionPace for Gap {
    fn turn(&self, _ip: IpAddr) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(Duration::from_millis(20)))
    }
}

/// sslyze's cipher-suite and curve scans of one lab host.
fn sslyze(host: Host) -> Oracle {
    let scans = [
        "--sslv2",
        "--sslv3",
        "--tlsv1",
        "--tlsv1_1",
        "--tlsv1_2",
        "--tlsv1_3",
        "--elliptic_curves",
    ];
    mxscope_tests::runs::sslyze::run(SocketAddr::new(host.ip, SMTP_PORT), &scans)
        .unwrap_or_else(|e| panic!("sslyze on {}: {e:#}", host.name))
}

fn depth(record: &TargetRecord) -> &mxscope_common::TlsDepth {
    record.tls_depth.as_ref().expect("a depth record")
}

fn finding_ids(record: &TargetRecord) -> BTreeSet<FindingId> {
    record.findings.iter().map(|f| f.id).collect()
}

#[tokio::test]
async fn accepted_suites_per_version_equal_sslyze_on_real_mtas() {
    lab::postfix();
    lab::exim();
    let chunks = |v: &str| -> u32 {
        let n = if v == "tls1_3" { 5 } else { 330 };
        n / mxscope_worker::tls::depth::plan::CHUNK as u32 + 1
    };
    let mut hosts = DEPTH_HOSTS.to_vec();
    // Exim (GnuTLS) too: the lab's has no cap on concurrent sessions, so
    // sslyze's bursts are not refused with 421.
    hosts.extend([MX_LEGACY, MX_EXIM]);
    for host in hosts {
        let name = host.name;
        // The oracle first: a host's children of our sessions are gone by
        // the time sslyze's burst comes.
        let oracle = tokio::task::spawn_blocking(move || sslyze(host))
            .await
            .expect("sslyze ran");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let record = probe(host, DepthLevel::Suites).await;
        let d = depth(&record);
        assert!(d.not_measured.is_empty(), "{name}: {:?}", d.not_measured);
        let versions: BTreeSet<&String> = d
            .versions
            .iter()
            .filter(|(_, v)| !v.accepted.is_empty())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            versions,
            oracle.accepted.keys().collect::<BTreeSet<_>>(),
            "{name}: versions with accepted suites"
        );
        let ours_curves: BTreeSet<String> = d
            .versions
            .values()
            .flat_map(|v| v.groups.iter())
            .filter(|g| !g.starts_with("ffdhe"))
            .cloned()
            .collect();
        assert_eq!(ours_curves, oracle.curves, "{name}: ECDHE curves");
        for (version, v) in &d.versions {
            assert!(v.complete, "{name} {version}: {:?}", v.stopped);
            let ours: BTreeSet<String> = v.accepted.iter().cloned().collect();
            let tried = oracle.tried.get(version).cloned().unwrap_or_default();
            let comparable: BTreeSet<String> = ours.intersection(&tried).cloned().collect();
            let theirs = oracle.accepted.get(version).cloned().unwrap_or_default();
            assert_eq!(comparable, theirs, "{name} {version}: accepted suites");
            // Suites sslyze cannot offer are still listed; each must be real.
            for extra in ours.difference(&tried) {
                println!("{name} {version}: {extra} (sslyze does not try it)");
                assert!(extra.starts_with("TLS_"), "{name}: {extra}");
            }
            // Groups: accepted groups + 1 more hellos, counted in `sessions`.
            let budget = (v.accepted.len() + v.groups.len()) as u32 + chunks(version) + 4;
            assert!(
                v.sessions <= budget,
                "{name} {version}: {} sessions for {} accepted suites",
                v.sessions,
                v.accepted.len()
            );
        }
    }
}

#[tokio::test]
async fn the_server_preference_is_told_apart_from_the_client_s() {
    lab::postfix();
    let prefer = probe(MX_PREFER, DepthLevel::Suites).await;
    let tls12 = &depth(&prefer).versions["tls1_2"];
    assert_eq!(tls12.server_preference, Some(true));
    assert_eq!(
        tls12.accepted,
        vec![
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_RSA_WITH_AES_256_CBC_SHA256",
        ],
        "the server's order"
    );
    let aead = probe(MX_AEAD, DepthLevel::Suites).await;
    assert_eq!(
        depth(&aead).versions["tls1_2"].server_preference,
        Some(false)
    );
}

#[tokio::test]
async fn findings_show_on_the_hosts_that_have_them_at_both_levels() {
    lab::postfix();
    lab::fakes();
    use FindingId::*;
    let cases: Vec<(Host, Vec<FindingId>)> = vec![
        (MX_VALID, vec![AnonymousSuite, NoForwardSecrecy]),
        (
            MX_WEAK,
            vec![NullCipher, AnonymousSuite, Tls10Cbc, NoForwardSecrecy],
        ),
        (MX_PREFER, vec![NoForwardSecrecy]),
        (MX_DH1024, vec![Logjam]),
        (MX_AEAD, vec![]),
        (MX_TLS12_CBC, vec![]),
        // OpenSSL's automatic DH matches the 1024-bit RSA key's strength:
        // its DHE prime is 1024 bits too (sslyze agrees, see below).
        (MX_SMALLKEY, vec![Logjam, RsaUnder2048, NoForwardSecrecy]),
        (MX_SHA1, vec![Sha1Signature, NoForwardSecrecy]),
        (
            MX_WEAKTLS,
            vec![
                Sslv2,
                Export,
                Rc4,
                Sweet32,
                Tls10Cbc,
                Compression,
                NoSecureRenegotiation,
                NoFallbackScsv,
                NoForwardSecrecy,
            ],
        ),
    ];
    for (host, expected) in cases {
        let expected: BTreeSet<FindingId> = expected.into_iter().collect();
        for level in [DepthLevel::Classes, DepthLevel::Suites] {
            let record = probe(host, level).await;
            assert_eq!(
                finding_ids(&record),
                expected,
                "{} at {level}: {:#?}",
                host.name,
                record.findings
            );
        }
    }
}

#[tokio::test]
async fn the_weak_scripted_server_is_measured_fact_by_fact() {
    lab::fakes();
    let record = probe(MX_WEAKTLS, DepthLevel::Suites).await;
    let d = depth(&record);
    assert_eq!(d.sslv2, Tested::Yes);
    assert_eq!(d.fallback_scsv, Tested::No);
    assert_eq!(d.compression, Tested::Yes);
    assert_eq!(d.secure_renegotiation, Tested::No);
    assert_eq!(d.extended_master_secret, Tested::No);
    let tls12 = &d.versions["tls1_2"];
    assert_eq!(
        tls12.accepted,
        vec![
            "TLS_RSA_WITH_RC4_128_SHA",
            "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        ]
    );
    assert_eq!(tls12.server_preference, Some(true));
    let classes = probe(MX_WEAKTLS, DepthLevel::Classes).await;
    let c = &depth(&classes).versions["tls1_2"];
    use SuiteClass::*;
    assert_eq!(c.classes, vec![Export, Rc4, Block64, Cbc, NoForwardSecrecy]);
    // Four suites in four groups: four picks and one refusal.
    assert_eq!(c.sessions, 5);
    let evidence = &record
        .findings
        .iter()
        .find(|f| f.id == FindingId::Rc4)
        .expect("an RC4 finding")
        .evidence;
    assert!(
        evidence.ends_with(": TLS_RSA_WITH_RC4_128_SHA"),
        "{evidence}"
    );
}

#[tokio::test]
async fn a_small_budget_says_what_was_not_measured() {
    lab::postfix();
    let mut config = config(None, true);
    config.depth = DepthLevel::Suites;
    config.depth_budget = 10;
    let tls = lab_tls();
    let record = Prober::new(config, tls)
        .probe_target(MX_VALID.ip, vec![MX_VALID.name.to_string()])
        .await;
    let d = depth(&record);
    assert_eq!(d.sessions, 10);
    assert_eq!(
        d.not_measured,
        vec![
            "tls1_2 suites",
            "tls1_1 suites",
            "tls1_0 suites",
            "ssl3 suites",
            "groups",
            "dh_group",
            "fallback_scsv",
            "sslv2"
        ]
    );
    assert_eq!(
        record.protocols.tls1_0,
        mxscope_common::VersionSupport::NotTested,
        "not reached within the budget"
    );
    assert!(!d.versions["tls1_2"].complete);
    assert!(d.versions["tls1_3"].complete, "TLS 1.3 came first and fit");
}

#[tokio::test]
async fn the_depth_hellos_answer_the_version_probes_and_count_as_sessions() {
    lab::postfix();
    for host in [MX_VALID, MX_WEAK, MX_LEGACY] {
        // The default depth: the main session and the version probes only;
        // its depth holds the raw hellos' facts and no session.
        let legacy = probe(host, DepthLevel::Free).await;
        let free = depth(&legacy);
        assert_eq!((free.level, free.sessions), (DepthLevel::Free, 0));
        assert_eq!(legacy.sessions, 5, "{}: main + four versions", host.name);
        let with = probe(host, DepthLevel::Classes).await;
        let d = depth(&with);
        assert_eq!(
            (
                free.secure_renegotiation,
                free.extended_master_secret,
                free.compression
            ),
            (
                d.secure_renegotiation,
                d.extended_master_secret,
                d.compression
            ),
            "{}: the version probes' hellos tell what the depth's tell",
            host.name
        );
        assert_eq!(
            with.protocols, legacy.protocols,
            "{}: the same version support without separate version probes",
            host.name
        );
        assert_eq!(
            with.sessions,
            1 + depth(&with).sessions,
            "{}: depth sessions are counted in the record's sessions",
            host.name
        );
    }
}

/// `mxscope scan --tls-depth classes` end to end, as a user runs it: the
/// report counts hosts per finding and the findings export lists each.
#[test]
fn a_scan_with_tls_depth_reports_and_exports_findings() {
    lab::postfix();
    lab::fakes();
    let dir = mxscope_tests::runs::cluster::test_dir("tls-depth-scan");
    let data = dir.join("data");
    let hosts = [MX_VALID, MX_WEAK, MX_AEAD, MX_DH1024, MX_WEAKTLS];
    let list = dir.join("depth.txt");
    let domains: Vec<String> = hosts.iter().map(domains::for_host).collect();
    std::fs::write(&list, domains.join("\n")).unwrap();
    let mxscope = mxscope_tests::runs::cluster::bin("mxscope");
    let out = Command::new(&mxscope)
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args(["--allow-private", "--ehlo-name", "probe.mxscope.lab.test"])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .args(["--tls-depth", "classes", "--ip-gap", "50ms"])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("--format jsonl|csv|findings"), "{stdout}");

    let run = |args: &[&str]| {
        let out = Command::new(&mxscope)
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value =
        serde_json::from_str(&run(&["report", "s1", "--format", "json"])).unwrap();
    let dist = |name: &str| -> BTreeMap<String, u64> {
        json["vantages"][0]["distributions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no distribution {name}"))["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"].as_str().unwrap();
                let id = value.split([' ', ':']).next().unwrap().to_string();
                (id, r["count"].as_u64().unwrap())
            })
            .collect()
    };
    let findings = dist("findings");
    // mx-valid: anonymous, no FS; mx-weak: NULL, anonymous, TLS 1.0 CBC,
    // no FS; mx-dh1024: Logjam; mx-aead: none; mx-weaktls: nine.
    let expected: BTreeMap<String, u64> = [
        ("anonymous_suite", 2),
        ("no_forward_secrecy", 3),
        ("null_cipher", 1),
        ("tls10_cbc", 2),
        ("logjam", 1),
        ("sslv2", 1),
        ("export", 1),
        ("rc4", 1),
        ("sweet32", 1),
        ("compression", 1),
        ("no_secure_renegotiation", 1),
        ("no_fallback_scsv", 1),
        ("no", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        findings, expected,
        "hosts per finding ('no' is 'no finding')"
    );
    assert_eq!(
        dist("weakest_suite_class"),
        [("null", 1), ("anonymous", 1), ("export", 1), ("aead", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    );

    let rows = json["vantages"][0]["findings"].as_array().unwrap();
    assert_eq!(rows.len() as u64, expected.values().sum::<u64>() - 1);
    assert_eq!(rows[0]["finding"], "sslv2", "worst first");
    assert_eq!(rows[0]["host"], "mx-weaktls.lab.test");
    let text = run(&["report", "s1"]);
    assert!(
        text.contains("Hosts with findings (16 rows, worst first)")
            && text.contains("mx-dh1024.lab.test   127.0.1.72  logjam"),
        "{text}"
    );
    let markdown = run(&["report", "s1", "--format", "markdown"]);
    assert!(markdown.contains("### Hosts with findings"), "{markdown}");
    let html = run(&["report", "s1", "--format", "html"]);
    assert!(
        html.contains("<h3>Hosts with findings</h3>")
            && html.contains("<td>mx-dh1024.lab.test</td><td>127.0.1.72</td><td>logjam</td>"),
        "the HTML findings table"
    );

    // `compare` puts the findings side by side with another scan's.
    let compared = run(&["compare", "s1", "s1"]);
    assert!(
        compared.contains("no_fallback_scsv") && compared.contains("Weakest accepted suite class"),
        "{compared}"
    );

    let csv = run(&["export", "s1", "--format", "findings"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("scan,vantage,ip,mx_names,finding,severity,title,evidence,cve,cwe")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, expected.values().sum::<u64>() - 1);
    assert!(
        rows.iter()
            .any(|r| r.contains("mx-weaktls.lab.test,sslv2,critical,")
                && r.contains("CVE-2016-0800")),
        "{csv}"
    );
}

/// Free facts of the main session: SCTs embedded in the leaf, the
/// handshake signature scheme.
#[tokio::test]
async fn embedded_scts_and_the_signature_scheme_are_recorded() {
    lab::postfix();
    let record = probe(MX_PREFER, DepthLevel::Free).await;
    let tls = record.tls.as_ref().expect("a handshake");
    let expected: Vec<String> = mxscope_tests::certs::SCT_LOG_IDS
        .iter()
        .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    assert_eq!(tls.chain[0].scts, expected);
    assert!(tls.chain[1].scts.is_empty(), "the CA has none");
    assert_eq!(tls.signature_scheme.as_deref(), Some("RSA_PSS_SHA256"));
    let valid = probe(MX_VALID, DepthLevel::Free).await;
    assert!(valid.tls.as_ref().unwrap().chain[0].scts.is_empty());
    let ecdsa = probe(MX_ECDSA, DepthLevel::Free).await;
    assert_eq!(
        ecdsa.tls.as_ref().unwrap().signature_scheme.as_deref(),
        Some("ECDSA_NISTP256_SHA256")
    );
}

#[tokio::test]
async fn groups_are_enumerated_per_version() {
    lab::postfix();
    let record = probe(MX_VALID, DepthLevel::Suites).await;
    let d = depth(&record);
    // TLS 1.3 names its group in a HelloRetryRequest, in the server's order
    // (Postfix 3.7's tls_eecdh_auto_curves: X25519 X448 prime256v1
    // secp521r1 secp384r1; no ffdhe group).
    assert_eq!(
        d.versions["tls1_3"].groups,
        ["x25519", "x448", "secp256r1", "secp521r1", "secp384r1"]
    );
    // TLS 1.2 in its ServerKeyExchange, following the client's order.
    assert_eq!(
        d.versions["tls1_2"].groups,
        ["x25519", "secp256r1", "secp384r1", "secp521r1", "x448"]
    );
    let dhe = probe(MX_DH1024, DepthLevel::Suites).await;
    assert!(
        depth(&dhe).versions["tls1_2"].groups.is_empty(),
        "no ECDHE suite"
    );
    let classes = probe(MX_VALID, DepthLevel::Classes).await;
    assert!(
        depth(&classes)
            .versions
            .values()
            .all(|v| v.groups.is_empty()),
        "groups are a suites-level fact"
    );
}

/// OCSP stapling (a free fact): Exim staples a response the lab CA made;
/// it says `good`, names the leaf and verifies with the issuer's key.
/// Postfix staples nothing.
#[tokio::test]
async fn a_stapled_ocsp_response_is_read_and_verified() {
    lab::exim();
    lab::postfix();
    let record = probe(MX_EXIM, DepthLevel::Free).await;
    let tls = record.tls.as_ref().expect("a handshake");
    let ocsp = tls.ocsp.as_ref().expect("Exim staples its response");
    assert_eq!(ocsp.status, "good", "{ocsp:?}");
    assert!(ocsp.for_leaf, "{ocsp:?}");
    assert_eq!(ocsp.verifies, Some(true), "{ocsp:?}");
    assert!(ocsp.next_update.is_some() && ocsp.produced_at.is_some());
    let postfix = probe(MX_VALID, DepthLevel::Free).await;
    assert!(postfix.tls.as_ref().unwrap().ocsp.is_none());
}

/// `--tls-depth vulns`: the scripted vulnerable server is found vulnerable
/// to every check (ROBOT as a strong oracle, in ten sessions); every real
/// lab MTA is not, and its ROBOT verdict is sslyze's.
#[tokio::test]
async fn intrusive_checks_find_the_vulnerable_peer_and_no_real_mta() {
    lab::postfix();
    lab::exim();
    lab::fakes();
    let vulnerable = probe(MX_VULN, DepthLevel::Vulns).await;
    let d = depth(&vulnerable);
    assert_eq!(
        (d.heartbleed, d.ccs_injection, d.robot),
        (Tested::Yes, Tested::Yes, Tested::Yes),
        "{d:?}"
    );
    let robot = d.robot_detail.as_deref().unwrap_or_default();
    assert!(
        robot.starts_with("strong oracle")
            && robot.contains("valid padding → alert bad_record_mac")
            && robot.contains("wrong first bytes → alert decrypt_error"),
        "{robot}"
    );
    let ids = finding_ids(&vulnerable);
    for id in [
        FindingId::Heartbleed,
        FindingId::CcsInjection,
        FindingId::Robot,
    ] {
        assert!(ids.contains(&id), "{id:?} in {ids:?}");
    }
    let json = serde_json::to_string(&vulnerable).unwrap();
    assert!(
        !json.contains("\\u0007\\u000e"),
        "nothing the server sent back is kept"
    );
    for host in [MX_VALID, MX_LEGACY, MX_WEAK, MX_AEAD, MX_EXIM] {
        let record = probe(host, DepthLevel::Vulns).await;
        let d = depth(&record);
        assert_eq!(
            (d.heartbleed, d.ccs_injection, d.robot),
            (Tested::No, Tested::No, Tested::No),
            "{}: {d:?}",
            host.name
        );
        let ids = finding_ids(&record);
        for id in [
            FindingId::Heartbleed,
            FindingId::CcsInjection,
            FindingId::Robot,
        ] {
            assert!(!ids.contains(&id), "{}: {id:?}", host.name);
        }
        let ours = d.robot_detail.clone().unwrap_or_default();
        println!("{}: ROBOT {ours}", host.name);
        let addr = SocketAddr::new(host.ip, SMTP_PORT);
        let theirs = tokio::task::spawn_blocking(move || {
            mxscope_tests::runs::sslyze::run(addr, &["--robot"])
        })
        .await
        .expect("sslyze ran")
        .unwrap_or_else(|e| panic!("sslyze --robot on {}: {e:#}", host.name));
        let expected = match theirs.robot.as_deref() {
            Some("NOT_VULNERABLE_NO_ORACLE") => "no oracle",
            Some("NOT_VULNERABLE_RSA_NOT_SUPPORTED") => "no RSA key exchange",
            other => panic!("{}: sslyze says {other:?}", host.name),
        };
        assert!(
            ours.starts_with(expected),
            "{}: {ours} / sslyze {theirs:?}",
            host.name
        );
    }
}

/// A DHE server on a well-known 1024-bit prime: the group is named, and
/// the Logjam finding says it is a common one.
#[tokio::test]
async fn a_known_dh_group_is_named() {
    lab::postfix();
    let record = probe(MX_DH1024, DepthLevel::Free).await;
    let tls = record.tls.as_ref().expect("first-flight facts");
    assert_eq!(tls.dh_bits, Some(1024));
    assert_eq!(
        tls.dh_group.as_deref(),
        Some("modp_1024 (RFC 2409 group 2)")
    );
    let logjam = record
        .findings
        .iter()
        .find(|f| f.id == FindingId::Logjam)
        .expect("a Logjam finding");
    assert!(logjam.evidence.contains("modp_1024"), "{}", logjam.evidence);
    // Postfix 3.7's own DHE group (no parameter file): RFC 3526's 2048-bit.
    let dhe = probe(MX_DHE, DepthLevel::Free).await;
    let tls = dhe.tls.as_ref().expect("first-flight facts");
    assert_eq!(
        (tls.dh_bits, tls.dh_group.as_deref()),
        (Some(2048), Some("modp_2048 (RFC 3526)"))
    );
}

/// A server that prefers ECDHE shows its DH prime to no session but the
/// depth's DHE-only hello (one session, `classes` and up); the size is the
/// one sslyze reports for the accepted DHE suites.
#[tokio::test]
async fn the_dhe_hello_names_the_prime_behind_ecdhe() {
    lab::postfix();
    let weak = probe(MX_DH1024, DepthLevel::Classes).await;
    let d = depth(&weak);
    assert_eq!(
        (d.dh_bits, d.dh_group.as_deref()),
        (Some(1024), Some("modp_1024 (RFC 2409 group 2)"))
    );
    assert!(finding_ids(&weak).contains(&FindingId::Logjam));
    let stock = probe(MX_VALID, DepthLevel::Classes).await;
    assert!(
        stock.tls.as_ref().and_then(|t| t.dh_bits).is_none(),
        "the main session spoke ECDHE"
    );
    let d = depth(&stock);
    assert_eq!(
        (d.dh_bits, d.dh_group.as_deref()),
        (Some(2048), Some("modp_2048 (RFC 3526)"))
    );
    assert!(!finding_ids(&stock).contains(&FindingId::Logjam));
    let addr = SocketAddr::new(MX_VALID.ip, SMTP_PORT);
    let theirs = tokio::task::spawn_blocking(move || dhe_sizes(addr))
        .await
        .expect("sslyze ran");
    assert_eq!(
        theirs,
        BTreeSet::from([2048]),
        "sslyze's authenticated DHE sizes"
    );
    let small = probe(MX_SMALLKEY, DepthLevel::Classes).await;
    assert_eq!(depth(&small).dh_bits, Some(1024));
    let addr = SocketAddr::new(MX_SMALLKEY.ip, SMTP_PORT);
    let theirs = tokio::task::spawn_blocking(move || dhe_sizes(addr))
        .await
        .expect("sslyze ran");
    assert_eq!(theirs, BTreeSet::from([1024]), "sslyze on the small key");
    let aead = probe(MX_AEAD, DepthLevel::Classes).await;
    assert_eq!(depth(&aead).dh_bits, None, "no DHE suite accepted");
}

/// The DH sizes sslyze reports for the TLS 1.2 authenticated DHE suites it
/// accepted (the anonymous ones get OpenSSL's automatic primes by strength:
/// 1024 and 3072 bits on this host).
fn dhe_sizes(addr: SocketAddr) -> BTreeSet<u64> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("sslyze.json");
    let status = Command::new("python3")
        .args(["-m", "sslyze", "--starttls", "smtp", "--quiet", "--tlsv1_2"])
        .arg(format!("--json_out={}", json.display()))
        .arg(addr.to_string())
        .status()
        .expect("python3 -m sslyze");
    assert!(status.success());
    let text = std::fs::read_to_string(&json).expect("sslyze's JSON");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    value["server_scan_results"][0]["scan_result"]["tls_1_2_cipher_suites"]["result"]
        ["accepted_cipher_suites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["ephemeral_key"]["type_name"] == "DH")
        .filter(|s| {
            let name = s["cipher_suite"]["name"].as_str().unwrap_or_default();
            name.starts_with("TLS_DHE_")
        })
        .filter_map(|s| s["ephemeral_key"]["size"].as_u64())
        .collect()
}

/// `mxscope-worker probe`'s readable text shows the depth and the findings.
#[tokio::test]
async fn the_probe_summary_shows_depth_and_findings() {
    lab::postfix();
    let record = probe(MX_PREFER, DepthLevel::Suites).await;
    let mut domain = mxscope_common::DomainRecord::new(
        domains::for_host(&MX_PREFER),
        mxscope_common::DnsResult::failed(mxscope_common::DnsStatus::Ok, ""),
    );
    domain.dns.mx = vec![mxscope_common::MxEntry {
        preference: 10,
        exchange: MX_PREFER.name.to_string(),
        addresses: vec![MX_PREFER.ip],
        status: mxscope_common::DnsStatus::Ok,
    }];
    domain.targets = vec![record];
    let mut text = Vec::new();
    mxscope_worker::summary::write_domain(&mut text, &domain).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("tls1_2: cbc no_forward_secrecy aead; 3 suites, server's order; groups"),
        "{text}"
    );
    assert!(
        text.contains("findings: no_forward_secrecy (low)"),
        "{text}"
    );
}

/// `--legacy` at the `free` level: secure renegotiation, extended master
/// secret and compression come from the version probes' own hellos (no
/// session more), and their findings with them; the report's depth
/// sections still need `--tls-depth`.
#[tokio::test]
async fn the_raw_hellos_give_renegotiation_ems_and_compression_for_free() {
    lab::postfix();
    lab::fakes();
    let modern = probe(MX_VALID, DepthLevel::Free).await;
    let d = depth(&modern);
    assert_eq!(d.level, DepthLevel::Free);
    assert_eq!(
        (
            d.secure_renegotiation,
            d.extended_master_secret,
            d.compression
        ),
        (Tested::Yes, Tested::Yes, Tested::No),
        "{d:?}"
    );
    assert_eq!(d.sessions, 0, "no depth session at the free level");
    assert!(d.versions.is_empty());
    let ids = finding_ids(&modern);
    assert!(!ids.contains(&FindingId::NoSecureRenegotiation), "{ids:?}");

    let weak = probe(MX_WEAKTLS, DepthLevel::Free).await;
    let d = depth(&weak);
    assert_eq!(
        (
            d.secure_renegotiation,
            d.extended_master_secret,
            d.compression
        ),
        (Tested::No, Tested::No, Tested::Yes),
        "{d:?}"
    );
    let ids = finding_ids(&weak);
    assert!(
        ids.contains(&FindingId::NoSecureRenegotiation) && ids.contains(&FindingId::Compression),
        "{ids:?}"
    );
    // Without --legacy nothing is sent: nothing is known.
    let mut config = config(None, false);
    config.depth = DepthLevel::Free;
    let tls = lab_tls();
    let plain = Prober::new(config, tls)
        .probe_target(MX_VALID.ip, vec![MX_VALID.name.to_string()])
        .await;
    assert!(plain.tls_depth.is_none());
}
