//! Protocol-version probes: SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 (DESIGN §4).
//!
//! rustls cannot speak the old versions, nor RSA key exchange, DHE or CBC
//! suites in TLS 1.2, so each version is tested by sending a
//! hand-built ClientHello that offers exactly one version, on a stream that
//! has just received STARTTLS's `220`, and by reading the first answer: a
//! ServerHello or an alert. No handshake is ever completed; the caller drops
//! the connection afterwards (one fresh SMTP session per version).
//!
//! Sans-IO core: [`client_hello`] builds the bytes to send and [`classify`]
//! reads what came back, saying [`Answer::Incomplete`] until it can decide.
//! [`test_version`] is the thin async driver that owns the socket.
//!
//! Layout: `hello` builds the ClientHello, `answer` classifies what came
//! back, this module holds the versions and the driver.

use std::time::Duration;

use mxscope_common::VersionSupport;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::tls::exchange::{send_and_read, ReadEnd};

mod answer;
mod hello;
#[cfg(test)]
mod tests;

pub use answer::classify;
pub use answer::Pick;
pub(crate) use answer::{alert_name, first_message, read_server_hello, version_name, FirstMessage};
pub use hello::client_hello;
pub(crate) use hello::{be16, be24, hello_random, push_extension, sni_host, SIGNATURE_SCHEMES};

/// Most bytes read while waiting for a verdict; more is an `error`.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// A protocol version rustls cannot speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyVersion {
    Ssl3,
    Tls1_0,
    Tls1_1,
    /// With every TLS 1.2 suite a permissive OpenSSL client offers (RSA key
    /// exchange, DHE, CBC included), unlike rustls.
    Tls1_2,
}

impl LegacyVersion {
    /// Every version probed by hand, oldest first.
    pub const ALL: [Self; 4] = [Self::Ssl3, Self::Tls1_0, Self::Tls1_1, Self::Tls1_2];

    /// The version number on the wire (`client_version`, record version).
    pub const fn wire(self) -> u16 {
        match self {
            Self::Ssl3 => 0x0300,
            Self::Tls1_0 => 0x0301,
            Self::Tls1_1 => 0x0302,
            Self::Tls1_2 => 0x0303,
        }
    }

    /// The record-layer version of the ClientHello: the version itself, but
    /// TLS 1.0 for a TLS 1.2 hello, as OpenSSL sends it (old servers refuse
    /// a record version they do not know).
    pub const fn record_wire(self) -> u16 {
        match self {
            Self::Tls1_2 => 0x0301,
            other => other.wire(),
        }
    }

    /// The record's `protocols` key (`tls1_0`).
    pub const fn key(self) -> &'static str {
        match self {
            Self::Ssl3 => "ssl3",
            Self::Tls1_0 => "tls1_0",
            Self::Tls1_1 => "tls1_1",
            Self::Tls1_2 => "tls1_2",
        }
    }

    /// Display name, spelled like the record's `tls.version` (`TLSv1.0`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ssl3 => "SSLv3",
            Self::Tls1_0 => "TLSv1.0",
            Self::Tls1_1 => "TLSv1.1",
            Self::Tls1_2 => "TLSv1.2",
        }
    }

    /// SSLv3 has no extensions (RFC 6101), so no SNI either.
    const fn has_extensions(self) -> bool {
        !matches!(self, Self::Ssl3)
    }
}

/// What [`classify`] makes of the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not enough bytes to decide: read more (within the deadline).
    Incomplete,
    /// Decided; the detail is short and meant for people.
    Verdict(VersionSupport, Option<String>),
}

impl Answer {
    fn verdict(support: VersionSupport, detail: impl Into<String>) -> Self {
        Self::Verdict(support, Some(detail.into()))
    }

    fn error(detail: impl Into<String>) -> Self {
        Self::verdict(VersionSupport::Error, detail)
    }
}

/// What a version probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub support: VersionSupport,
    /// Short and meant for people: the suite chosen, the alert, the error.
    pub detail: Option<String>,
    /// The ServerHello's facts (renegotiation_info, extended master
    /// secret, compression) when the version is supported.
    pub hello: Option<Pick>,
}

/// Send a ClientHello offering exactly `version` on a stream that has just
/// received STARTTLS's 220, and classify the answer. `timeout` is one
/// absolute deadline for writing and reading. A server that closes or resets
/// the connection without a byte has refused the version (`not_supported`,
/// "connection closed"); running out of time is an `error` ("timeout").
/// The stream is left mid-handshake: drop it.
pub async fn test_version<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    sni: Option<&str>,
    timeout: Duration,
) -> (VersionSupport, Option<String>) {
    let probed = probe_version(stream, version, sni, timeout).await;
    (probed.support, probed.detail)
}

/// [`test_version`], with the ServerHello's facts.
pub async fn probe_version<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    sni: Option<&str>,
    timeout: Duration,
) -> Probed {
    let deadline = Instant::now() + timeout;
    let probed = exchange(stream, version, sni, deadline).await;
    tracing::debug!(version = version.name(), support = ?probed.support, detail = ?probed.detail, "legacy probe");
    probed
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    sni: Option<&str>,
    deadline: Instant,
) -> Probed {
    let hello = client_hello(version, sni);
    let decide = |received: &[u8]| match classify(version, received) {
        Answer::Verdict(support, detail) => {
            let hello = match (support, first_message(received)) {
                (VersionSupport::Supported, FirstMessage::ServerHello(body)) => {
                    read_server_hello(&body)
                }
                _ => None,
            };
            Some(Probed {
                support,
                detail,
                hello,
            })
        }
        Answer::Incomplete => None,
    };
    let (support, detail) =
        match send_and_read(stream, &hello, deadline, MAX_ANSWER_BYTES, 4096, decide).await {
            Ok(probed) => return probed,
            Err(end) if end.is_reset_before_answer() => (
                VersionSupport::NotSupported,
                Some("connection reset".into()),
            ),
            Err(ReadEnd::Timeout) => error("timeout"),
            Err(ReadEnd::WriteFailed(e)) => error(format!("write failed: {e}")),
            Err(ReadEnd::ReadFailed { error: e, .. }) => error(format!("read failed: {e}")),
            Err(ReadEnd::Closed { after: 0 }) => (
                VersionSupport::NotSupported,
                Some("connection closed".into()),
            ),
            Err(ReadEnd::Closed { after }) => {
                error(format!("connection closed after {after} bytes, mid-answer"))
            }
            Err(ReadEnd::Full { .. }) => error("answer buffer full"),
        };
    Probed {
        support,
        detail,
        hello: None,
    }
}

fn error(detail: impl Into<String>) -> (VersionSupport, Option<String>) {
    (VersionSupport::Error, Some(detail.into()))
}

/// The suites of the version probes' hello, strongest first (what a
/// permissive OpenSSL client offers).
pub fn permissive_suites() -> &'static [u16] {
    hello::CIPHER_SUITES
}
