//! MTA-STS and TLS-RPT against the lab: Unbound serves the TXT records, nginx
//! the policies over HTTPS (lab CA), Postfix the MX hosts whose certificates
//! an enforcing sender would check. Every verdict is asserted exactly.

use std::time::{Duration, Instant};

use mxscope_common::record::security_policy::{MtaSts, MtaStsVerdict, PolicyMode, TlsRptVerdict};
use mxscope_tests::lab;
use mxscope_tests::nginx::{sts_domains as d, HTTPS_PORT};
use mxscope_tests::runs::probing::{prober, resolver};
use mxscope_worker::dns::DnsConfig;
use mxscope_worker::security::mtasts::{
    mx_tls_facts, FetchConfig, FetchError, MxTls, PolicyFetcher,
};
use mxscope_worker::security::tlsrpt;

fn dns_config() -> DnsConfig {
    DnsConfig {
        resolvers: vec![lab::dns().addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    }
}

fn fetch_config() -> FetchConfig {
    FetchConfig {
        port: HTTPS_PORT,
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        allow_private: true,
        ..FetchConfig::default()
    }
}

/// A fetcher asking the lab's Unbound and trusting the lab CA.
fn fetcher() -> PolicyFetcher {
    lab::nginx();
    PolicyFetcher::new(&dns_config(), Some(&lab::certs().ca_pem), fetch_config()).expect("fetcher")
}

/// The domain's MX names and the TLS facts of every MX address, as the
/// probe records them.
async fn mx_facts(domain: &str) -> (Vec<String>, Vec<MxTls>) {
    lab::postfix();
    let dns = resolver().resolve(domain).await;
    let prober = prober(None, false);
    let mut names = Vec::new();
    let mut facts = Vec::new();
    for mx in &dns.mx {
        names.push(mx.exchange.clone());
        for ip in &mx.addresses {
            let target = prober.probe_target(*ip, vec![mx.exchange.clone()]).await;
            facts.extend(mx_tls_facts(&target));
        }
    }
    (names, facts)
}

async fn check(domain: &str) -> MtaSts {
    let (names, facts) = mx_facts(domain).await;
    fetcher().check(domain, &names, &facts).await
}

fn detail(sts: &MtaSts) -> &str {
    sts.detail.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn enforce_with_matching_mx_and_valid_certificate() {
    let sts = check(d::ENFORCE).await;
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceOk, "{sts:?}");
    assert_eq!(sts.txt_id.as_deref(), Some(d::TXT_ID));
    let policy = sts.policy.as_ref().expect("policy");
    assert_eq!(policy.mode, PolicyMode::Enforce);
    assert_eq!(policy.mx, vec!["mx-other.example", "*.lab.test"]);
    assert_eq!(policy.max_age, 86400);
    assert_eq!(sts.per_mx.len(), 1);
    let mx = &sts.per_mx[0];
    assert_eq!(mx.mx, "mx-valid.lab.test");
    assert!(mx.pattern_match);
    assert_eq!(mx.certificate_ok, Some(true));
    assert_eq!(mx.reason, None);
}

#[tokio::test]
async fn enforce_with_a_pattern_that_misses_the_mx() {
    let sts = check(d::NOMATCH).await;
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail, "{sts:?}");
    let mx = &sts.per_mx[0];
    assert!(!mx.pattern_match);
    assert_eq!(mx.certificate_ok, Some(true));
    assert_eq!(
        mx.reason.as_deref(),
        Some("matches no mx pattern of the policy")
    );
}

#[tokio::test]
async fn enforce_with_invalid_mx_certificates() {
    let sts = check(d::BADCERT).await;
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail, "{sts:?}");
    assert_eq!(detail(&sts), "2 of 2 MX would be refused");
    let expired = &sts.per_mx[0];
    assert_eq!(expired.mx, "mx-expired.lab.test");
    assert!(expired.pattern_match);
    assert_eq!(expired.certificate_ok, Some(false));
    assert_eq!(
        expired.reason.as_deref(),
        Some("certificate not valid (expired)")
    );
    let selfsigned = &sts.per_mx[1];
    assert_eq!(selfsigned.mx, "mx-selfsigned.lab.test");
    assert_eq!(selfsigned.certificate_ok, Some(false));
    assert_eq!(
        selfsigned.reason.as_deref(),
        Some("certificate not valid (self_signed)")
    );
}

#[tokio::test]
async fn testing_and_none_modes() {
    let sts = check(d::TESTING).await;
    assert_eq!(sts.verdict, MtaStsVerdict::Testing, "{sts:?}");
    assert_eq!(
        sts.policy.as_ref().map(|p| p.mode),
        Some(PolicyMode::Testing)
    );
    assert!(sts.per_mx[0].pattern_match);

    let sts = check(d::NONE).await;
    assert_eq!(sts.verdict, MtaStsVerdict::None, "{sts:?}");
    assert_eq!(sts.policy.as_ref().map(|p| p.mode), Some(PolicyMode::None));
    assert!(sts.per_mx.is_empty());
}

#[tokio::test]
async fn txt_without_a_policy_host() {
    let sts = check(d::NOHOST).await;
    assert_eq!(sts.verdict, MtaStsVerdict::TxtWithoutPolicy, "{sts:?}");
    assert_eq!(sts.txt_id.as_deref(), Some(d::TXT_ID));
    assert_eq!(
        detail(&sts),
        "policy host mta-sts.sts-nohost.lab.test has no address (NXDOMAIN)"
    );

    // The name exists, nothing listens on 443.
    let sts = check(d::NOANSWER).await;
    assert_eq!(sts.verdict, MtaStsVerdict::TxtWithoutPolicy, "{sts:?}");
    assert!(
        detail(&sts).starts_with("policy host mta-sts.sts-noanswer.lab.test does not answer"),
        "{sts:?}"
    );
}

#[tokio::test]
async fn fetch_failures_say_why() {
    let sts = check(d::LARGE).await;
    assert_eq!(sts.verdict, MtaStsVerdict::PolicyFetchFailed, "{sts:?}");
    assert_eq!(detail(&sts), "policy larger than 65536 bytes");

    let sts = check(d::REDIRECT).await;
    assert_eq!(sts.verdict, MtaStsVerdict::PolicyFetchFailed, "{sts:?}");
    assert!(detail(&sts).starts_with("redirect (HTTP 301)"), "{sts:?}");

    // The lab CA is not among Mozilla's roots: certificate validation fails.
    let mozilla =
        PolicyFetcher::new(&dns_config(), None, fetch_config()).expect("fetcher with webpki roots");
    lab::nginx();
    match mozilla.fetch_policy(d::ENFORCE).await {
        Err(FetchError::Tls { reason, .. }) => {
            assert!(reason.contains("UnknownIssuer"), "{reason}")
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn txt_cases() {
    let sts = check(d::TWOTXT).await;
    assert_eq!(sts.verdict, MtaStsVerdict::TxtInvalid, "{sts:?}");
    assert_eq!(detail(&sts), "2 v=STSv1 records (exactly one allowed)");

    let sts = check(d::ABSENT).await;
    assert_eq!(sts.verdict, MtaStsVerdict::NoMtaSts, "{sts:?}");
    assert_eq!(sts.detail, None);
}

#[tokio::test]
async fn tls_rpt_present_absent_malformed() {
    let fetcher = fetcher();
    let rpt = tlsrpt::lookup(fetcher.dns(), d::ENFORCE).await;
    assert_eq!(rpt.verdict, TlsRptVerdict::Valid, "{rpt:?}");
    assert!(rpt.present);
    assert_eq!(rpt.rua, d::RUA.to_vec());

    let rpt = tlsrpt::lookup(fetcher.dns(), d::TESTING).await;
    assert_eq!(rpt.verdict, TlsRptVerdict::Absent, "{rpt:?}");
    assert!(!rpt.present);

    let rpt = tlsrpt::lookup(fetcher.dns(), d::NOMATCH).await;
    assert_eq!(rpt.verdict, TlsRptVerdict::Invalid, "{rpt:?}");
    assert!(rpt.present);
    assert!(rpt.rua.is_empty());
    assert!(
        rpt.detail.as_deref().is_some_and(|d| d.contains("ftp://")),
        "{rpt:?}"
    );
}

/// What the checks cost per domain: DNS queries (known by construction:
/// `_mta-sts` TXT, then A + AAAA of the policy host when a record exists,
/// plus the `_smtp._tls` TXT) and wall time on the lab. Each domain uses a
/// fresh fetcher (cold cache). Run with `--nocapture` to see the table.
#[tokio::test]
async fn cost_per_domain() {
    lab::nginx();
    let cases = [
        (d::ABSENT, 1),
        (d::ENFORCE, 3),
        (d::NOHOST, 3),
        (d::NOANSWER, 3),
        (d::LARGE, 3),
    ];
    for (domain, sts_queries) in cases {
        let fetcher = PolicyFetcher::new(&dns_config(), Some(&lab::certs().ca_pem), fetch_config())
            .expect("fetcher");
        let start = Instant::now();
        let sts = fetcher.check(domain, &[], &[]).await;
        let sts_time = start.elapsed();
        let start = Instant::now();
        let _ = tlsrpt::lookup(fetcher.dns(), domain).await;
        let rpt_time = start.elapsed();
        // No MX is given: the verdict is beside the point, the policy is.
        let policy = match (&sts.policy, &sts.detail) {
            (Some(policy), _) => format!("policy mode {:?}", policy.mode),
            (None, Some(detail)) => detail.clone(),
            (None, None) => format!("{:?}", sts.verdict),
        };
        eprintln!(
            "cost {domain:<24} queries={sts_queries}+1 mta-sts={:>5.1} ms tls-rpt={:>4.1} ms  {policy}",
            sts_time.as_secs_f64() * 1000.0,
            rpt_time.as_secs_f64() * 1000.0,
        );
        // Bounded even on the lab's slowest case.
        assert!(sts_time < Duration::from_secs(6), "{domain}: {sts_time:?}");
    }
}
