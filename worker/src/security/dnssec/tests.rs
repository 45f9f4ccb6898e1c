//! The validating resolver's verdicts and statuses.

use super::*;

#[test]
fn weakest_status_wins() {
    use DnssecStatus::*;
    assert_eq!(weakest([Secure, Secure]), Secure);
    assert_eq!(weakest([Secure, Insecure]), Insecure);
    assert_eq!(weakest([Insecure, Indeterminate]), Indeterminate);
    assert_eq!(weakest([Secure, Bogus, Indeterminate]), Bogus);
    assert_eq!(weakest([]), Indeterminate);
    assert!(dane_applies(Secure, Secure));
    assert!(!dane_applies(Secure, Insecure));
}

#[test]
fn a_missing_trust_anchor_is_an_error() {
    let config = DnsConfig {
        resolvers: vec!["127.0.0.1:53".parse().expect("addr")],
        ..DnsConfig::default()
    };
    let err = SecureResolver::new(&config, Some(Path::new("/nonexistent/anchor")));
    assert!(matches!(err, Err(SecureDnsError::TrustAnchor { .. })));
    assert!(SecureResolver::new(&config, None).is_ok());
    assert!(matches!(
        SecureResolver::from_text(&config, Some("no anchor here")),
        Err(SecureDnsError::EmptyTrustAnchor(_) | SecureDnsError::TrustAnchor { .. })
    ));
    assert!(SecureResolver::from_text(&config, None).is_ok());
}
