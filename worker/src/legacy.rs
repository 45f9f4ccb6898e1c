//! Legacy protocol probes. OWNED BY THE LEGACY HELPER — stub.

use std::time::Duration;

use mxscope_common::VersionSupport;
use tokio::io::{AsyncRead, AsyncWrite};

/// A protocol version rustls cannot speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyVersion {
    Ssl3,
    Tls1_0,
    Tls1_1,
}

/// Send a ClientHello offering exactly `version` on a stream that has just
/// received STARTTLS's 220, and classify the answer.
pub async fn test_version<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    sni: Option<&str>,
    timeout: Duration,
) -> (VersionSupport, Option<String>) {
    let _ = (stream, version, sni, timeout);
    todo!("legacy helper")
}
