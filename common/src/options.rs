//! How a scan's targets are probed: the one options type that the command
//! lines, the coordinator's store and the wire all convert into, and the
//! defaults every entry point shares. Converting from the wire (where bad
//! input is refused) is [`crate::wire::convert`]; the flags are
//! [`crate::cli::args`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::DepthLevel;

/// The defaults of every probe and scan option, in one place: the flags'
/// defaults, the worker's defaults for a wire value of 0 and the worker's
/// timeouts all come from here.
pub mod defaults {
    use std::time::Duration;

    /// SMTP port.
    pub const PORT: u16 = 25;
    /// Connecting to a target.
    pub const TIMEOUT_CONNECT: Duration = Duration::from_secs(10);
    /// Waiting for the greeting.
    pub const TIMEOUT_GREETING: Duration = Duration::from_secs(30);
    /// Waiting for each command's reply.
    pub const TIMEOUT_COMMAND: Duration = Duration::from_secs(30);
    /// The TLS handshake.
    pub const TIMEOUT_HANDSHAKE: Duration = Duration::from_secs(20);
    /// The whole SMTP session, whatever the phases say.
    pub const TIMEOUT_SESSION: Duration = Duration::from_secs(90);
    /// One DNS query attempt.
    pub const TIMEOUT_DNS: Duration = Duration::from_secs(5);
    /// Sessions per target that said "not now" (421/4xx, reset).
    pub const RETRY_ATTEMPTS: u32 = 3;
    /// Most sessions per such target, whatever a scan asks.
    pub const MAX_RETRY_ATTEMPTS: u32 = 10;
    /// Wait before the first retry (doubling after).
    pub const RETRY_DELAY: Duration = Duration::from_secs(60);
    /// Least gap between two sessions to one IP.
    pub const IP_GAP: Duration = Duration::from_secs(1);
    /// Sessions per second to one /24 or /48, in thousandths.
    pub const NETWORK_RATE_MILLI: u32 = 10_000;
    /// Sessions per second of a whole vantage, in thousandths (the CLI's default cap).
    pub const VANTAGE_RATE_MILLI: u32 = 100_000;
    /// Most extra sessions per IP of `--tls-depth` (classes needs about 10
    /// on a typical server, suites about accepted suites + 10).
    pub const TLS_DEPTH_BUDGET: u32 = 160;

    /// `duration` as a flag value (`10s`, `500ms`), for clap's defaults.
    pub fn text(duration: Duration) -> String {
        if duration.subsec_millis() == 0 {
            format!("{}s", duration.as_secs())
        } else {
            format!("{}ms", duration.as_millis())
        }
    }

    /// A rate in thousandths as a flag value (`10`, `0.5`).
    pub fn rate_text(milli: u32) -> String {
        (f64::from(milli) / 1000.0).to_string()
    }
}

/// How a scan's targets are probed. The coordinator stores it with the scan
/// (serde, so fields are only ever added, with `#[serde(default)]`) and
/// hands it to every worker with each lease; a value of 0 or empty means
/// "the worker's default" (see [`defaults`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanOptions {
    /// An [`crate::EhloName`]'s text, parsed where it enters (CLI, gRPC on
    /// either side); empty = each worker's own default.
    pub ehlo_name: String,
    pub port: u16,
    pub legacy: bool,
    pub timeout_connect_ms: u32,
    pub timeout_greeting_ms: u32,
    pub timeout_command_ms: u32,
    pub timeout_handshake_ms: u32,
    pub timeout_session_ms: u32,
    /// One DNS query attempt's timeout; 0 = the default.
    #[serde(default)]
    pub timeout_dns_ms: u32,
    /// DNS servers (IP:PORT); empty = each worker's system configuration.
    pub resolvers: Vec<String>,
    /// PEM trust anchors; `None` = Mozilla's roots.
    pub ca_pem: Option<String>,
    pub allow_private: bool,
    /// Run the security checks (DNSSEC, DANE, reverse DNS, MTA-STS, TLS-RPT).
    #[serde(default)]
    pub security: bool,
    /// The DNSSEC trust anchor's DNSKEY lines (zone-file format, despite the
    /// name); `None` = the IANA root.
    #[serde(default)]
    pub trust_anchor_pem: Option<String>,
    /// The scan's own exclusion entries (`mxscope scan|submit --exclude`),
    /// normalised lines; the coordinator's list applies on top.
    #[serde(default)]
    pub exclusions: Vec<String>,
    /// Most sessions per rate-limited target; 0 = the worker default.
    #[serde(default)]
    pub retry_attempts: u32,
    /// First retry delay; 0 = the worker default.
    #[serde(default)]
    pub retry_delay_ms: u32,
    /// Least gap between sessions to one IP; `None` = the default (1 s).
    #[serde(default)]
    pub ip_gap_ms: Option<u32>,
    /// Sessions/s per /24 or /48 in thousandths; `None` = the default (10/s), 0 = none.
    #[serde(default)]
    pub network_rate_milli: Option<u32>,
    /// Sessions/s of a whole vantage in thousandths (shared by its workers); 0 = no cap.
    #[serde(default)]
    pub vantage_rate_milli: u32,
    /// A name known to be DNSSEC-signed under the trust anchor: each
    /// worker's resolver self-check also asks it (`--dnssec-check-name`);
    /// `None` = only the anchor's DNSKEY.
    #[serde(default)]
    pub dnssec_check_name: Option<String>,
    /// How deep the probe looks at each server's TLS (`--tls-depth`).
    #[serde(default)]
    pub tls_depth: DepthLevel,
    /// Most extra sessions per IP for the TLS depth; 0 = the default.
    #[serde(default)]
    pub tls_depth_budget: u32,
}

impl ScanOptions {
    /// Whether the legacy version probes run: asked for, or needed by a
    /// TLS depth that enumerates per supported version.
    pub fn legacy_versions(&self) -> bool {
        self.legacy || self.tls_depth.extra_sessions()
    }

    /// The per-IP session budget of the TLS depth.
    pub fn depth_budget(&self) -> u32 {
        match self.tls_depth_budget {
            0 => defaults::TLS_DEPTH_BUDGET,
            n => n,
        }
    }
}

/// Per-phase timeouts and the absolute session deadline (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    /// Each command's reply (EHLO, HELO, STARTTLS, QUIT).
    pub command: Duration,
    pub handshake: Duration,
    /// The whole session, whatever the phases say: a server that trickles
    /// bytes cannot hold a slot longer than this.
    pub session: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: defaults::TIMEOUT_CONNECT,
            greeting: defaults::TIMEOUT_GREETING,
            command: defaults::TIMEOUT_COMMAND,
            handshake: defaults::TIMEOUT_HANDSHAKE,
            session: defaults::TIMEOUT_SESSION,
        }
    }
}

/// Milliseconds as a wire value (saturating).
pub fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// `ms`, or `default` when it is 0.
pub fn ms_or(ms: u32, default: Duration) -> Duration {
    match ms {
        0 => default,
        ms => Duration::from_millis(u64::from(ms)),
    }
}

impl ScanOptions {
    /// The session timeouts, [`defaults`] where the scan says 0.
    pub fn timeouts(&self) -> Timeouts {
        let d = Timeouts::default();
        Timeouts {
            connect: ms_or(self.timeout_connect_ms, d.connect),
            greeting: ms_or(self.timeout_greeting_ms, d.greeting),
            command: ms_or(self.timeout_command_ms, d.command),
            handshake: ms_or(self.timeout_handshake_ms, d.handshake),
            session: ms_or(self.timeout_session_ms, d.session),
        }
    }

    /// Sessions per rate-limited target: the default for 0, capped.
    pub fn retry_attempts(&self) -> u32 {
        match self.retry_attempts {
            0 => defaults::RETRY_ATTEMPTS,
            n => n.min(defaults::MAX_RETRY_ATTEMPTS),
        }
    }

    /// The first retry delay: the default for 0.
    pub fn timeout_dns(&self) -> Duration {
        ms_or(self.timeout_dns_ms, defaults::TIMEOUT_DNS)
    }

    pub fn retry_delay(&self) -> Duration {
        ms_or(self.retry_delay_ms, defaults::RETRY_DELAY)
    }

    /// The least gap between two sessions to one IP: the default when unset.
    pub fn ip_gap(&self) -> Duration {
        self.ip_gap_ms
            .map_or(defaults::IP_GAP, |ms| Duration::from_millis(u64::from(ms)))
    }

    /// Sessions per second to one network in thousandths: the default when unset.
    pub fn network_rate_milli(&self) -> u32 {
        self.network_rate_milli
            .unwrap_or(defaults::NETWORK_RATE_MILLI)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_default() {
        let options = ScanOptions::default();
        assert_eq!(options.timeouts(), Timeouts::default());
        assert_eq!(options.retry_attempts(), defaults::RETRY_ATTEMPTS);
        assert_eq!(options.retry_delay(), defaults::RETRY_DELAY);
        assert_eq!(options.ip_gap(), defaults::IP_GAP);
        assert_eq!(options.network_rate_milli(), defaults::NETWORK_RATE_MILLI);
        let set = ScanOptions {
            timeout_connect_ms: 1500,
            retry_attempts: 99,
            ip_gap_ms: Some(0),
            network_rate_milli: Some(0),
            ..ScanOptions::default()
        };
        assert_eq!(set.timeouts().connect, Duration::from_millis(1500));
        assert_eq!(set.timeouts().session, defaults::TIMEOUT_SESSION);
        assert_eq!(set.retry_attempts(), defaults::MAX_RETRY_ATTEMPTS);
        assert_eq!(set.ip_gap(), Duration::ZERO);
        assert_eq!(set.network_rate_milli(), 0);
    }

    #[test]
    fn flag_texts_of_the_defaults() {
        assert_eq!(defaults::text(defaults::TIMEOUT_CONNECT), "10s");
        assert_eq!(defaults::text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(defaults::rate_text(defaults::NETWORK_RATE_MILLI), "10");
        assert_eq!(defaults::rate_text(500), "0.5");
        for text in ["10s", "1500ms"] {
            let parsed = crate::units::parse_duration(text).unwrap();
            assert_eq!(defaults::text(parsed), text);
        }
    }

    #[test]
    fn stored_options_without_security_fields_load() {
        let json = r#"{"ehlo_name":"x","port":25,"legacy":false,"timeout_connect_ms":0,
            "timeout_greeting_ms":0,"timeout_command_ms":0,"timeout_handshake_ms":0,
            "timeout_session_ms":0,"resolvers":[],"ca_pem":null,"allow_private":false}"#;
        let options: ScanOptions = serde_json::from_str(json).unwrap();
        assert!(!options.security);
    }
}
