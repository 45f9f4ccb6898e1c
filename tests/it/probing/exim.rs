//! Smoke tests of the lab's Exim (GnuTLS): greeting, STARTTLS, a TLS
//! handshake trusting the lab CA. Loopback only.

use rustls::ProtocolVersion;

use crate::probing::postfix::{s_client, Session};
use mxscope_tests::plan;

fn exim() {
    mxscope_tests::lab::exim();
}

#[tokio::test]
async fn exim_greets_and_offers_starttls() {
    exim();
    let mut s = Session::connect(&plan::MX_EXIM, None).await;
    let (greeting, ehlo) = s.hello().await;
    assert!(
        greeting.lines[0].starts_with(plan::MX_EXIM.name),
        "{greeting:?}"
    );
    assert!(ehlo.has_keyword("STARTTLS"), "{ehlo:?}");
    let tls = s
        .starttls(&plan::MX_EXIM)
        .await
        .expect("TLS with the lab CA");
    let (_, conn) = tls.get_ref();
    assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn exim_refuses_tls_1_0() {
    exim();
    let (ok, out) = s_client(&plan::MX_EXIM, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]).await;
    assert!(!ok, "{out}");
    let (ok, out) = s_client(&plan::MX_EXIM, &["-tls1_2"]).await;
    assert!(ok, "{out}");
}
