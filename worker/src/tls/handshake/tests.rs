//! The recording handshake: versions, verdicts, name matches.

use super::*;

#[test]
fn only_an_unknown_issuer_with_a_self_signed_leaf_is_self_signed() {
    let leaf = |self_signed| {
        let mut info = cert::analyse(b"not a certificate");
        info.self_signed = self_signed;
        vec![info]
    };
    let verdict = |v| (v, Some("why".to_string()));
    assert_eq!(
        promote_self_signed(verdict(Verification::UnknownIssuer), &leaf(true)),
        verdict(Verification::SelfSigned)
    );
    assert_eq!(
        promote_self_signed(verdict(Verification::UnknownIssuer), &leaf(false)),
        verdict(Verification::UnknownIssuer)
    );
    assert_eq!(
        promote_self_signed(verdict(Verification::Expired), &leaf(true)),
        verdict(Verification::Expired),
        "an expired self-signed leaf is reported expired, as before"
    );
    assert_eq!(
        promote_self_signed(verdict(Verification::UnknownIssuer), &[]),
        verdict(Verification::UnknownIssuer)
    );
}

#[test]
fn trust_anchors_from_pem() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["ca.test".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap();
    assert!(TlsContext::from_pem(ca.pem().as_bytes()).is_ok());
    assert!(matches!(
        TlsContext::from_pem(b"no certificate here"),
        Err(TlsSetupError::CaFile { .. })
    ));
    assert!(TlsContext::new(None).is_ok());
}
