//! Records and counting enums (DESIGN §4, §5).
//!
//! Field names are a contract that users' scripts rely on: add fields freely,
//! rename none without bumping [`SCHEMA_VERSION`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::security_dns::{DaneResult, DnssecReason, DnssecStatus, ResolverCheck, ReverseDns};
use crate::security_policy::{MtaSts, TlsRpt};
use crate::tls_facts::{HandshakeFailure, KeyExchange, NameCertificate, SuiteChoice, TlsSource};

/// Version of the JSON record layout.
/// 2 added `security` (domain) and `dane` / `ptr` (target); every field of 1 is kept.
pub const SCHEMA_VERSION: u32 = 2;

/// One record per (scan, vantage, domain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainRecord {
    /// Always `"domain"`.
    pub kind: String,
    pub schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    /// The domain as an A-label (ASCII).
    pub domain: String,
    /// The domain as the user wrote it, when it differs (IDN U-label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_unicode: Option<String>,
    pub dns: DnsResult,
    /// Embedded only in `mxscope-worker probe` output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetRecord>,
    /// DNSSEC, MTA-STS and TLS-RPT facts; present when the checks were on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<DomainSecurity>,
}

impl DomainRecord {
    pub fn new(domain: String, dns: DnsResult) -> Self {
        Self {
            kind: "domain".into(),
            schema_version: SCHEMA_VERSION,
            scan: None,
            vantage: None,
            domain,
            domain_unicode: None,
            dns,
            targets: Vec::new(),
            security: None,
        }
    }
}

/// What a domain publishes about transport security (schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainSecurity {
    /// DNSSEC status of the domain's MX RRset (or of its denial).
    pub dnssec_mx: DnssecStatus,
    /// DNSSEC status of each exchange's A/AAAA (the weakest of the two).
    #[serde(default)]
    pub dnssec_exchanges: BTreeMap<String, DnssecStatus>,
    /// Why `dnssec_mx` is not `secure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_mx_reason: Option<DnssecReason>,
    /// Why an exchange's addresses are not `secure` (only those exchanges).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dnssec_exchange_reasons: BTreeMap<String, DnssecReason>,
    /// The resolver self-check of the worker that made this record; carried
    /// by a few records of each worker and scan (the first, then one in
    /// [`crate::security_dns::RESOLVER_CHECK_EVERY`]), read by the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver_check: Option<ResolverCheck>,
    /// The MTA-STS verdict. In `mxscope-worker probe` output it is final
    /// (the targets' certificates are evaluated). In a distributed scan the
    /// resolve task has no targets: `per_mx` then says "not probed" and an
    /// `enforce` verdict is provisional — the report's join must re-evaluate
    /// `policy` against the scan's target records.
    pub mta_sts: MtaSts,
    pub tls_rpt: TlsRpt,
}

/// Status of a domain's MX resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DnsStatus {
    /// An answer was obtained (MX, null MX, or an implicit MX from A/AAAA).
    Ok,
    /// The domain does not exist.
    Nxdomain,
    /// The domain exists but has neither MX nor A/AAAA.
    Nodata,
    Servfail,
    Timeout,
    Refused,
    /// Any other resolver failure (see `error`).
    Error,
    /// On an exclusion list: never resolved (`error` names the entry).
    Excluded,
}

/// What DNS said about a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsResult {
    pub status: DnsStatus,
    /// RFC 7505 null MX (`0 .`): the domain accepts no mail.
    pub null_mx: bool,
    /// RFC 5321 §5.1: no MX, the domain's own A/AAAA act as its MX.
    pub implicit_mx: bool,
    /// Exchanges ordered by preference, then name.
    pub mx: Vec<MxEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Facts about the DNS data that a correct zone would not show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<DnsAnomaly>,
}

impl DnsResult {
    /// A failed resolution with its status and reason.
    pub fn failed(status: DnsStatus, error: impl Into<String>) -> Self {
        Self {
            status,
            null_mx: false,
            implicit_mx: false,
            mx: Vec::new(),
            error: Some(error.into()),
            anomalies: Vec::new(),
        }
    }
}

/// One exchange of a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MxEntry {
    pub preference: u16,
    /// The exchange name, lowercase, without trailing dot.
    pub exchange: String,
    pub addresses: Vec<IpAddr>,
    /// Status of the exchange's own A/AAAA lookup (`ok` when it has addresses).
    pub status: DnsStatus,
}

/// A DNS fact worth reporting that does not stop the measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DnsAnomaly {
    /// The MX target is an alias (RFC 2181 §10.3 forbids it).
    MxIsCname { exchange: String, target: String },
    /// The MX target has neither A nor AAAA.
    MxWithoutAddress { exchange: String },
    /// A null MX mixed with other MX records (RFC 7505 §3).
    NullMxWithOthers,
    /// The exchange had more addresses than a probe keeps
    /// (`worker::dns::MAX_ADDRESSES_PER_EXCHANGE`); the lowest were kept.
    AddressesTruncated { exchange: String, total: usize },
}

/// One record per (scan, vantage, ip): what one SMTP session to one IP showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub skip_reason: Option<crate::politeness::SkipReason>,
    /// Present when the target was retried (421, 4xx, reset before greeting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<crate::politeness::Retries>,
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

/// Outcome of a target, the base of every report (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    SupportsStarttls,
    DeclaredNoStarttls,
    ConnectionError,
}

/// Where a session was when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// Milliseconds spent per phase; absent phases were not reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// What the TLS handshake showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: String,
    /// IANA cipher suite name.
    pub cipher: String,
    /// Key-exchange group (`X25519`, `secp256r1`, ...), when known.
    pub group: Option<String>,
    pub verification: Verification,
    /// The verifier's own words, when not `valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_detail: Option<String>,
    /// Whether the leaf certificate covers each MX name that points at the IP.
    pub name_match: BTreeMap<String, bool>,
    /// Leaf first, as the server sent it.
    pub chain: Vec<CertInfo>,
    /// A complete handshake, or the server's first flight only.
    #[serde(default, skip_serializing_if = "TlsSource::is_handshake")]
    pub source: TlsSource,
    /// How the key was agreed (from the suite, or TLS 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_exchange: Option<KeyExchange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_secrecy: Option<bool>,
    /// Size of the server's finite-field DH prime (DHE suites), in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dh_bits: Option<u32>,
}

/// Certificate verification result (chain and validity; names are in `name_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verification {
    Valid,
    UnknownIssuer,
    SelfSigned,
    Expired,
    NotYetValid,
    BadSignature,
    Other,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::UnknownIssuer => "unknown_issuer",
            Self::SelfSigned => "self_signed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::Other => "other",
        }
    }
}

/// One certificate of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertInfo {
    /// False when the DER did not parse; only `sha256` and `der_base64` are then set.
    pub parsed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    pub key: KeyInfo,
    pub signature_algorithm: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex.
    pub spki_sha256: String,
    pub self_signed: bool,
    /// The raw DER (base64), kept only for certificates that did not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub der_base64: Option<String>,
}

/// Public key facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`, or `unknown`.
    #[serde(rename = "type")]
    pub key_type: String,
    pub bits: Option<u32>,
    pub curve: Option<String>,
}

/// Support for one protocol version.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VersionSupport {
    Supported,
    NotSupported,
    Error,
    #[default]
    NotTested,
}

/// Protocol version support, SSLv3 to TLS 1.3.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocols {
    pub ssl3: VersionSupport,
    pub tls1_0: VersionSupport,
    pub tls1_1: VersionSupport,
    pub tls1_2: VersionSupport,
    pub tls1_3: VersionSupport,
}

/// A protocol fact about a session that a correct server would not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// Any record: what workers deliver and what exports contain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
// Most records in flight are targets (the large variant): boxing them would
// add an allocation per record to save space on the rarer domain records.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Domain(DomainRecord),
    Target(TargetRecord),
}

impl Record {
    /// Parse one JSON record, dispatching on its `kind`.
    pub fn from_json(json: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(borrow)]
            kind: &'a str,
        }
        let kind: Kind<'_> =
            serde_json::from_str(json).map_err(|e| format!("not a record: {e}"))?;
        match kind.kind {
            "domain" => serde_json::from_str(json)
                .map(Self::Domain)
                .map_err(|e| format!("invalid domain record: {e}")),
            "target" => serde_json::from_str(json)
                .map(Self::Target)
                .map_err(|e| format!("invalid target record: {e}")),
            other => Err(format!("unknown record kind {other:?}")),
        }
    }

    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security_dns::DaneVerdict;
    use crate::security_policy::{MtaStsVerdict, TlsRptVerdict};

    #[test]
    fn schema_1_records_still_parse() {
        let domain = r#"{"kind":"domain","schema_version":1,"domain":"example.org",
            "dns":{"status":"ok","null_mx":false,"implicit_mx":false,"mx":[]}}"#;
        let Ok(Record::Domain(domain)) = Record::from_json(domain) else {
            panic!("a schema 1 domain record parses");
        };
        assert_eq!(domain.security, None);
        let mut target = TargetRecord::new("192.0.2.1".parse().expect("ip"), 25, vec![]);
        target.schema_version = 1;
        let json = Record::Target(target).to_json();
        assert!(!json.contains("dane") && !json.contains("ptr"), "{json}");
        let Ok(Record::Target(target)) = Record::from_json(&json) else {
            panic!("a target without security fields parses");
        };
        assert!(target.dane.is_empty() && target.ptr.is_none());
    }

    #[test]
    fn security_fields_round_trip() {
        let mut domain =
            DomainRecord::new("example.org".into(), DnsResult::failed(DnsStatus::Ok, "x"));
        assert_eq!(domain.schema_version, 2);
        domain.security = Some(DomainSecurity {
            dnssec_mx: DnssecStatus::Secure,
            dnssec_exchanges: [("mx.example.org".to_string(), DnssecStatus::Insecure)].into(),
            dnssec_mx_reason: None,
            dnssec_exchange_reasons: [(
                "mx.example.org".to_string(),
                DnssecReason::InsecureDelegation,
            )]
            .into(),
            resolver_check: None,
            mta_sts: MtaSts {
                verdict: MtaStsVerdict::NoMtaSts,
                txt_id: None,
                policy: None,
                per_mx: Vec::new(),
                detail: None,
            },
            tls_rpt: TlsRpt {
                verdict: TlsRptVerdict::Absent,
                present: false,
                rua: Vec::new(),
                detail: None,
            },
        });
        let json = Record::Domain(domain.clone()).to_json();
        assert!(json.contains(r#""dnssec_mx":"secure""#), "{json}");
        assert_eq!(Record::from_json(&json), Ok(Record::Domain(domain)));

        let mut target = TargetRecord::new("192.0.2.1".parse().expect("ip"), 25, vec![]);
        target.dane.insert(
            "mx.example.org".into(),
            DaneResult {
                verdict: DaneVerdict::NoTlsa,
                tlsa: Vec::new(),
                detail: None,
                reason: None,
            },
        );
        let json = Record::Target(target.clone()).to_json();
        assert!(json.contains(r#""verdict":"no_tlsa""#), "{json}");
        assert_eq!(Record::from_json(&json), Ok(Record::Target(target)));
    }
}
