//! The target record (`kind: target`): what one SMTP session to one IP
//! showed — outcome, phase, timings, replies, TLS facts, anomalies — and
//! what the scheduling layer adds (skip reason, retry attempts).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::findings::Finding;
use super::{Outcome, Phase, Protocols, TlsDepth, TlsFacts, Verification, SCHEMA_VERSION};
use crate::record::security_dns::{DaneResult, ReverseDns};
use crate::record::tls_facts::{HandshakeFailure, NameCertificate, SuiteChoice};

/// One record per (scan, vantage, ip): what one SMTP session to one IP showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetRecord {
    /// Always `"target"`.
    pub kind: String,
    pub schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    pub ip: IpAddr,
    pub port: u16,
    /// Every MX name that points at this IP.
    pub mx_names: Vec<String>,
    pub outcome: Outcome,
    /// The phase the session ended in.
    pub phase: Phase,
    /// Human-readable reason for a non-`starttls_ok` outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub timings_ms: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<Reply>,
    /// EHLO keywords before TLS (or the HELO reply's absence of them).
    #[serde(default)]
    pub ehlo: Vec<String>,
    /// True when EHLO failed and HELO was used instead.
    #[serde(default)]
    pub helo_fallback: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls_reply: Option<Reply>,
    /// EHLO keywords after TLS, recorded separately (RFC 3207 §4.2).
    #[serde(default)]
    pub ehlo_tls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// Why the TLS handshake failed (outcome `starttls_handshake_failed`, or
    /// facts from the first flight); the text is in `detail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_failure: Option<HandshakeFailure>,
    /// The fatal alert the server sent, when `handshake_failure` is `alert_received`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_alert: Option<String>,
    /// The certificate per MX name (SNI) pointing at this IP: a server may
    /// choose its certificate by SNI (DESIGN §4). Name match is a fact of
    /// (MX name, IP).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, NameCertificate>,
    pub protocols: Protocols,
    /// The suite each supported version chose (`tls1_0` ... `tls1_3`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub protocol_suites: BTreeMap<String, SuiteChoice>,
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// DANE for SMTP per MX name pointing at this IP (schema 2; present when
    /// the checks were on and a TLS session was made). Whether DANE applies
    /// also needs the *domain's* MX RRset secure (`security.dnssec_mx`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dane: BTreeMap<String, DaneResult>,
    /// Reverse DNS of the IP with forward confirmation (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptr: Option<ReverseDns>,
    /// Why the target is `skipped` (excluded, no egress, not probed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// Present when the target was retried (421, 4xx, reset before greeting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// SMTP sessions (TCP connections) the final attempt opened to this IP:
    /// the main session plus each legacy version, certificate-per-name and
    /// first-flight session (earlier attempts are in `retries`). 0 in
    /// records of workers that did not count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sessions: u32,
    /// What `--tls-depth classes|suites` learnt (extra sessions, counted in
    /// `sessions`); absent at the default depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_depth: Option<TlsDepth>,
    /// Known weaknesses the facts above show ([`super::findings::derive`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TargetRecord {
    pub fn new(ip: IpAddr, port: u16, mx_names: Vec<String>) -> Self {
        Self {
            kind: "target".into(),
            schema_version: SCHEMA_VERSION,
            scan: None,
            vantage: None,
            ip,
            port,
            mx_names,
            outcome: Outcome::Skipped,
            phase: Phase::Connect,
            detail: None,
            timings_ms: Timings::default(),
            greeting: None,
            ehlo: Vec::new(),
            helo_fallback: false,
            starttls_reply: None,
            ehlo_tls: Vec::new(),
            tls: None,
            handshake_failure: None,
            handshake_alert: None,
            names: BTreeMap::new(),
            protocols: Protocols::default(),
            protocol_suites: BTreeMap::new(),
            anomalies: Vec::new(),
            dane: BTreeMap::new(),
            ptr: None,
            skip_reason: None,
            retries: None,
            sessions: 0,
            tls_depth: None,
            findings: Vec::new(),
        }
    }

    /// Whether the certificate `mx` got at this IP covers it: the one of its
    /// own SNI session (`names`) when recorded, else the main session's.
    /// `false` without TLS facts.
    pub fn name_matches(&self, mx: &str) -> bool {
        let Some(tls) = &self.tls else {
            return false;
        };
        self.names
            .get(mx)
            .and_then(|n| n.name_match)
            .or_else(|| tls.name_match.get(mx).copied())
            .unwrap_or(false)
    }

    /// The chain verification of the certificate `mx` got at this IP (its
    /// own SNI session's when recorded), if TLS facts exist.
    pub fn verification_for(&self, mx: &str) -> Option<Verification> {
        let tls = self.tls.as_ref()?;
        Some(
            self.names
                .get(mx)
                .and_then(|n| n.verification)
                .unwrap_or(tls.verification),
        )
    }
}

/// Milliseconds spent per phase; absent phases were not reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ehlo: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ehlo_tls: Option<u64>,
    pub total: u64,
}

/// A whole SMTP reply: code and text lines (decoded lossily, for display).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// A protocol fact about a session that a correct server would not show.
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
pub enum Anomaly {
    /// Bytes arrived after STARTTLS's 220 and before the TLS handshake
    /// (STARTTLS response injection); they were discarded, never fed to TLS.
    PreTlsInjection,
    /// A reply line was not CRLF-terminated, or its code was inconsistent
    /// across continuation lines.
    MalformedReply,
    /// A reply held bytes that are not UTF-8.
    NonUtf8Reply,
    /// The server spoke before the client sent its first command (unsolicited
    /// bytes after the greeting).
    EarlyTalker,
    /// The post-TLS EHLO failed.
    EhloTlsFailed,
    /// STARTTLS was advertised after TLS too.
    StarttlsAfterTls,
    /// The greeting was neither `220` nor a refusal (4xx/5xx), e.g. `221` or
    /// `354`; the session ended there, without STARTTLS (RFC 5321 §4.2).
    UnexpectedGreetingCode,
    /// EHLO was answered with a code of the wrong class (2xx other than
    /// `250`, or 3xx); HELO was tried next.
    UnexpectedEhloReply,
    /// HELO was answered with a code of the wrong class (2xx other than `250`, or 3xx).
    UnexpectedHeloReply,
    /// STARTTLS was answered with a code of the wrong class (2xx other than
    /// `220`, or 3xx); counted as `starttls_rejected`.
    UnexpectedStarttlsReply,
    /// The modern TLS stack (rustls) could not complete the handshake, so the
    /// TLS facts come from the server's first flight (`tls.source: first_flight`).
    ModernTlsFailed,
}

/// Why a target was recorded `skipped` without a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// On an exclusion list (network, MX-name suffix); `detail` names the entry.
    Excluded,
    /// The vantage has no port-25 egress.
    NoEgress,
    /// Its task failed too often (`detail` says why).
    NotProbed,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Excluded => "excluded",
            Self::NoEgress => "no_egress",
            Self::NotProbed => "not_probed",
        }
    }
}

/// One session of a retried target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    pub outcome: Outcome,
    pub phase: Phase,
    /// The reply code that made it retryable (e.g. 421), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Milliseconds after the first attempt started.
    pub at_ms: u64,
}

/// The attempts of a target that was retried; absent when one session sufficed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Retries {
    /// Every attempt, oldest first; the last one is the record's own outcome.
    pub attempts: Vec<Attempt>,
    /// The final outcome came after at least one retry.
    pub after_retry: bool,
    /// The final attempt was still rate-limited (a `421`/`4xx` or a reset
    /// before the greeting) when the attempts ran out.
    pub still_limited: bool,
}
