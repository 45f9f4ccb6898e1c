//! The counting enums of every report (DESIGN §4, §5): a target's outcome,
//! the headline's MX buckets, the phase a session ended in.

use serde::{Deserialize, Serialize};

/// Outcome of a target, the base of every report (DESIGN §4).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    StarttlsOk,
    /// STARTTLS got 220 but the TLS handshake failed (see `detail`).
    StarttlsHandshakeFailed,
    /// STARTTLS was advertised but answered with a non-220 reply.
    StarttlsRejected,
    NoStarttls,
    /// Both EHLO and HELO were refused.
    EhloFailed,
    /// 4xx/5xx greeting (e.g. 421, 554).
    GreetingRefused,
    ConnectRefused,
    ConnectTimeout,
    Unreachable,
    /// A wait after connect passed its timeout or the session deadline.
    Timeout,
    /// Malformed or oversized replies.
    ProtocolError,
    /// Not probed (blocklist, vantage without port-25 egress).
    Skipped,
}

impl Outcome {
    /// The report bucket (DESIGN §5).
    pub fn bucket(self) -> Bucket {
        match self {
            Self::StarttlsOk | Self::StarttlsHandshakeFailed | Self::StarttlsRejected => {
                Bucket::SupportsStarttls
            }
            Self::NoStarttls | Self::EhloFailed => Bucket::DeclaredNoStarttls,
            _ => Bucket::ConnectionError,
        }
    }

    /// Rank for "best outcome over the IPs of a host": lower is better.
    pub fn rank(self) -> u8 {
        match self {
            Self::StarttlsOk => 0,
            Self::StarttlsHandshakeFailed => 1,
            Self::StarttlsRejected => 2,
            Self::NoStarttls => 3,
            Self::EhloFailed => 4,
            Self::GreetingRefused => 5,
            _ => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StarttlsOk => "starttls_ok",
            Self::StarttlsHandshakeFailed => "starttls_handshake_failed",
            Self::StarttlsRejected => "starttls_rejected",
            Self::NoStarttls => "no_starttls",
            Self::EhloFailed => "ehlo_failed",
            Self::GreetingRefused => "greeting_refused",
            Self::ConnectRefused => "connect_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::ProtocolError => "protocol_error",
            Self::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three MX buckets of the headline; they add up to unique MX.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    SupportsStarttls,
    DeclaredNoStarttls,
    ConnectionError,
}

/// Where a session was when it ended.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    Connect,
    Greeting,
    Ehlo,
    Helo,
    Starttls,
    TlsHandshake,
    EhloTls,
    Quit,
    /// The session ran to its end.
    Done,
}
