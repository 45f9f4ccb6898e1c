use super::item::skipped_without_egress;
use super::*;
use mxscope_common::Outcome;

fn options() -> ScanOptions {
    ScanOptions {
        ehlo_name: "scanner.example".into(),
        port: 2525,
        legacy: true,
        resolvers: vec!["127.0.0.1:5353".into()],
        ca_pem: None,
        allow_private: true,
        security: false,
        trust_anchor_pem: None,
        ..ScanOptions::default()
    }
}

#[test]
fn scan_options_to_configs() {
    let options = options();
    let bind: IpAddr = "127.0.2.1".parse().unwrap();
    let probe = probe_config(&options, Some(bind), &[]).unwrap();
    assert_eq!(probe.ehlo_name.as_str(), "scanner.example");
    assert_eq!(probe.bind, Some(bind));
    assert_eq!(probe.port, 2525);
    assert!(probe.legacy && probe.allow_private);
    assert_eq!(probe.security, None, "security checks are off by default");
    assert_eq!(probe.timeouts, crate::config::Timeouts::default());

    let mut secure = options.clone();
    secure.security = true;
    secure.trust_anchor_pem = Some(". 3600 IN DNSKEY 257 3 13 AAAA".into());
    let mine: SocketAddr = "127.0.0.1:5354".parse().unwrap();
    let security = probe_config(&secure, None, &[mine])
        .unwrap()
        .security
        .unwrap();
    assert_eq!(security.resolvers, [mine]);
    assert_eq!(security.trust_anchor_text, secure.trust_anchor_pem);
    assert_eq!(security.signed_name, None);
    secure.dnssec_check_name = Some("sec.test".into());
    let security = probe_config(&secure, None, &[]).unwrap().security.unwrap();
    assert_eq!(security.signed_name.as_deref(), Some("sec.test"));

    assert_eq!(
        dns_config(&options, &[]).unwrap().resolvers,
        options.resolver_addrs().unwrap()
    );
    let mine: SocketAddr = "127.0.0.1:53".parse().unwrap();
    assert_eq!(dns_config(&options, &[mine]).unwrap().resolvers, [mine]);
    assert_eq!(retry_policy(&options), RetryPolicy::default());
    assert_eq!(limits(&options), Limits::default());
}

#[test]
fn scan_contexts_are_cached_per_scan() {
    let engine = Engine::new(4, 4, None, Vec::new(), false, 10);
    let a = engine.scan("s1", &options()).unwrap();
    let b = engine.scan("s1", &options()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let mut changed = options();
    changed.timeout_connect_ms = 1000;
    let c = engine.scan("s1", &changed).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    let mut bad = options();
    bad.ca_pem = Some("not a certificate".into());
    assert!(matches!(
        engine.scan("s2", &bad),
        Err(RunError::TrustAnchors(_))
    ));
}

#[test]
fn no_egress_means_skipped() {
    let record = skipped_without_egress("192.0.2.1".parse().unwrap(), 25, vec!["mx".into()]);
    assert_eq!(record.outcome, Outcome::Skipped);
    assert!(record.detail.unwrap().contains("egress"));
}
