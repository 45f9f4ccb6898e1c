//! How one target record shows up in a distribution: the row labels of key,
//! verification, highest protocol, protocol support, expiry and outcome;
//! and times and shares as text (`format_unix_ms`, `percent`).

use mxscope_common::findings::FindingId;
use mxscope_common::units::days_from_civil;
use mxscope_common::{
    DepthLevel, KeyExchange, Outcome, Phase, SuiteClass, TargetRecord, TlsSource, VersionSupport,
};

/// Protocol versions from the oldest, with their field and display names.
pub(crate) const VERSIONS: [(&str, &str); 5] = [
    ("ssl3", "SSLv3"),
    ("tls1_0", "TLSv1.0"),
    ("tls1_1", "TLSv1.1"),
    ("tls1_2", "TLSv1.2"),
    ("tls1_3", "TLSv1.3"),
];

/// Rows of a protocol-support distribution, in order.
pub(crate) const SUPPORT_ROWS: [&str; 4] = ["supported", "not_supported", "error", "not_tested"];

/// Rows of the expiry distribution, in order (an unreadable date gets its
/// own row, [`EXPIRY_UNREADABLE`], only when it occurs).
pub(crate) const EXPIRY_ROWS: [&str; 6] = [
    "expired",
    "< 7 days",
    "< 30 days",
    "< 90 days",
    "≥ 90 days",
    "no certificate",
];

/// The expiry row of a leaf whose `not_after` could not be read.
pub(crate) const EXPIRY_UNREADABLE: &str = "unreadable date";

/// Key label of a host without TLS facts.
pub(crate) const NO_KEY: &str = "none";

/// Verification label of a host whose handshake did not happen.
pub(crate) const NO_HANDSHAKE: &str = "no handshake";

/// What the report keeps of one target record (a few dozen bytes, so that
/// memory grows with unique IPs, not with record sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetSummary {
    pub(crate) outcome: Outcome,
    pub(crate) phase: Phase,
    /// "RSA 2048", "EC P-256", or [`NO_KEY`].
    pub(crate) key: String,
    /// `valid`, `unknown_issuer`, … or [`NO_HANDSHAKE`].
    pub(crate) verification: &'static str,
    /// "TLSv1.3", … or "none".
    pub(crate) highest_protocol: String,
    /// ssl3 … tls1_3.
    pub(crate) protocols: [VersionSupport; 5],
    /// None: no certificate; Some(None): unreadable date; else Unix seconds.
    pub(crate) not_after: Option<Option<i64>>,
    /// The negotiated (or first-flight) version, "TLSv1.2" style.
    pub(crate) tls_version: Option<String>,
    /// Key-exchange row label, or [`NO_HANDSHAKE`].
    pub(crate) key_exchange: &'static str,
    /// Whether the facts come from the first flight only.
    pub(crate) first_flight: bool,
    /// The MX names (sorted) whose certificate at this IP covers them: name
    /// match is a fact of (MX name, IP).
    pub(crate) names_matched: Vec<String>,
    /// What `--tls-depth` found, when it ran.
    pub(crate) depth: Option<DepthSummary>,
}

/// The report's view of a target's TLS depth and findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DepthSummary {
    /// Each finding with its evidence.
    pub(crate) findings: Vec<(FindingId, String)>,
    /// A [`WEAKEST_ROWS`] label.
    pub(crate) weakest: &'static str,
    /// A [`YES_NO_ROWS`] label: only suites with forward secrecy accepted.
    pub(crate) forward_secrecy_only: &'static str,
    /// A [`PREFERENCE_ROWS`] label.
    pub(crate) preference: &'static str,
    /// A [`YES_NO_ROWS`] label: SCTs embedded in the leaf.
    pub(crate) scts: &'static str,
    /// A [`YES_NO_ROWS`] label: an OCSP response stapled.
    pub(crate) ocsp: &'static str,
}

/// Rows of the weakest accepted suite class, weakest first.
pub(crate) const WEAKEST_ROWS: [&str; 8] = [
    "null",
    "anonymous",
    "export",
    "rc4",
    "block64",
    "cbc",
    "aead",
    NOT_MEASURED,
];
/// Rows of a yes/no fact of the depth probe.
pub(crate) const YES_NO_ROWS: [&str; 3] = ["yes", "no", NOT_MEASURED];
/// Rows of the suite-order verdict.
pub(crate) const PREFERENCE_ROWS: [&str; 3] = ["server's order", "client's order", NOT_MEASURED];
/// A depth fact the level or the budget did not measure.
pub(crate) const NOT_MEASURED: &str = "not measured";

impl DepthSummary {
    fn of(record: &TargetRecord) -> Option<Self> {
        // At the `free` level the depth holds only the raw hellos' facts
        // (`--legacy`): the report's depth sections need `--tls-depth`.
        let depth = record
            .tls_depth
            .as_ref()
            .filter(|d| d.level != DepthLevel::Free)?;
        let classes: Vec<SuiteClass> = depth.classes().collect();
        let weakest =
            SuiteClass::weakest(classes.iter().copied()).map_or(NOT_MEASURED, SuiteClass::name);
        let forward_secrecy_only = match (
            classes.is_empty(),
            classes.contains(&SuiteClass::NoForwardSecrecy),
        ) {
            (true, _) => NOT_MEASURED,
            (false, true) => "no",
            (false, false) => "yes",
        };
        // The newest version with a verdict speaks for the host.
        let verdict = ["tls1_3", "tls1_2", "tls1_1", "tls1_0", "ssl3"]
            .iter()
            .find_map(|v| depth.versions.get(*v).and_then(|d| d.server_preference));
        let preference = match verdict {
            Some(true) => "server's order",
            Some(false) => "client's order",
            None => NOT_MEASURED,
        };
        let scts = match record.tls.as_ref().and_then(|t| t.chain.first()) {
            Some(leaf) if !leaf.scts.is_empty() => "yes",
            Some(_) => "no",
            None => NOT_MEASURED,
        };
        let ocsp = match &record.tls {
            Some(tls) if tls.ocsp.is_some() => "yes",
            Some(_) => "no",
            None => NOT_MEASURED,
        };
        Some(Self {
            ocsp,
            scts,
            findings: record
                .findings
                .iter()
                .map(|f| (f.id, f.evidence.clone()))
                .collect(),
            weakest,
            forward_secrecy_only,
            preference,
        })
    }
}

impl TargetSummary {
    pub(crate) fn of(record: &TargetRecord) -> Self {
        let p = &record.protocols;
        let protocols = [p.ssl3, p.tls1_0, p.tls1_1, p.tls1_2, p.tls1_3];
        let leaf = record.tls.as_ref().and_then(|tls| tls.chain.first());
        Self {
            outcome: record.outcome,
            phase: record.phase,
            key: leaf.map_or_else(|| NO_KEY.to_string(), key_label),
            verification: record
                .tls
                .as_ref()
                .map_or(NO_HANDSHAKE, |tls| tls.verification.as_str()),
            highest_protocol: highest_protocol(
                &protocols,
                record.tls.as_ref().map(|t| t.version.as_str()),
            ),
            protocols,
            not_after: leaf.map(|c| parse_rfc3339(&c.not_after)),
            tls_version: record.tls.as_ref().map(|t| t.version.clone()),
            key_exchange: record.tls.as_ref().map_or(NO_HANDSHAKE, |t| {
                key_exchange_label(t.key_exchange, &t.cipher)
            }),
            first_flight: record
                .tls
                .as_ref()
                .is_some_and(|t| t.source == TlsSource::FirstFlight),
            names_matched: names_matched(record),
            depth: DepthSummary::of(record),
        }
    }

    /// Whether `name`'s certificate at this IP covers it.
    pub(crate) fn name_matches(&self, name: &str) -> bool {
        self.names_matched
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }

    /// The row of "a validating sender would accept" (DANE / MTA-STS style:
    /// chain valid, name matches, TLS 1.2 or higher), or the first reason not to.
    pub(crate) fn validating_sender(&self, name: &str) -> &'static str {
        match &self.tls_version {
            None => NO_HANDSHAKE,
            Some(_) if self.verification != "valid" => "no: chain not valid",
            Some(_) if !self.name_matches(name) => "no: name mismatch",
            Some(v) if v != "TLSv1.2" && v != "TLSv1.3" => "no: below TLS 1.2",
            Some(_) => "accepted",
        }
    }

    /// True when a legacy probe ran (SSLv3, TLS 1.0 or 1.1 not `not_tested`).
    pub(crate) fn legacy_tested(&self) -> bool {
        self.protocols[..3]
            .iter()
            .any(|s| *s != VersionSupport::NotTested)
    }
}

/// Names whose certificate matched: per name (`names`) when recorded, else
/// the main session's `name_match`.
fn names_matched(record: &TargetRecord) -> Vec<String> {
    let mut names: Vec<String> = record
        .mx_names
        .iter()
        .filter(|name| record.name_matches(name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Rows of the key-exchange distribution, in order.
pub(crate) const KEY_EXCHANGE_ROWS: [&str; 6] = [
    "TLS 1.3 (ephemeral)",
    "ECDHE",
    "DHE",
    "RSA (no forward secrecy)",
    "other",
    NO_HANDSHAKE,
];

fn key_exchange_label(kx: Option<KeyExchange>, cipher: &str) -> &'static str {
    match kx.unwrap_or_else(|| KeyExchange::of_suite(cipher)) {
        KeyExchange::Tls13 => KEY_EXCHANGE_ROWS[0],
        KeyExchange::Ecdhe => KEY_EXCHANGE_ROWS[1],
        KeyExchange::Dhe => KEY_EXCHANGE_ROWS[2],
        KeyExchange::Rsa => KEY_EXCHANGE_ROWS[3],
        _ => KEY_EXCHANGE_ROWS[4],
    }
}

/// "RSA 2048", "EC P-256", "Ed25519".
fn key_label(cert: &mxscope_common::CertInfo) -> String {
    let key = &cert.key;
    if !cert.parsed {
        return "unparsed certificate".to_string();
    }
    match (&key.curve, key.bits) {
        (Some(curve), _) => format!("{} {curve}", key.key_type),
        (None, Some(bits)) if key.key_type != "Ed25519" && key.key_type != "Ed448" => {
            format!("{} {bits}", key.key_type)
        }
        _ => key.key_type.clone(),
    }
}

/// The highest `supported` version, else the negotiated one, else "none".
fn highest_protocol(protocols: &[VersionSupport; 5], negotiated: Option<&str>) -> String {
    protocols
        .iter()
        .zip(VERSIONS)
        .rev()
        .find(|(s, _)| **s == VersionSupport::Supported)
        .map(|(_, (_, name))| name.to_string())
        .or_else(|| negotiated.filter(|v| !v.is_empty()).map(str::to_string))
        .unwrap_or_else(|| "none".to_string())
}

/// Order of highest-protocol rows: newest first, unknown names, then "none".
pub(crate) fn protocol_order(value: &str) -> usize {
    VERSIONS
        .iter()
        .rev()
        .position(|(_, name)| *name == value)
        .unwrap_or(if value == "none" { 7 } else { 6 })
}

/// `supported`, `not_supported`, `error`, `not_tested`.
pub(crate) fn support_label(s: VersionSupport) -> &'static str {
    match s {
        VersionSupport::Supported => SUPPORT_ROWS[0],
        VersionSupport::NotSupported => SUPPORT_ROWS[1],
        VersionSupport::Error => SUPPORT_ROWS[2],
        VersionSupport::NotTested => SUPPORT_ROWS[3],
    }
}

/// The expiry row of a leaf, relative to `now` (Unix seconds).
pub(crate) fn expiry_label(not_after: Option<Option<i64>>, now: i64) -> &'static str {
    const DAY: i64 = 86_400;
    match not_after {
        None => EXPIRY_ROWS[5],
        Some(None) => EXPIRY_UNREADABLE,
        Some(Some(t)) if t < now => EXPIRY_ROWS[0],
        Some(Some(t)) if t - now < 7 * DAY => EXPIRY_ROWS[1],
        Some(Some(t)) if t - now < 30 * DAY => EXPIRY_ROWS[2],
        Some(Some(t)) if t - now < 90 * DAY => EXPIRY_ROWS[3],
        Some(Some(_)) => EXPIRY_ROWS[4],
    }
}

/// The snake-case name of a phase (`done`, `ehlo`, `tls_handshake`).
pub(crate) fn phase_label(phase: Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{phase:?}").to_lowercase())
}

/// Unix seconds of an RFC 3339 UTC time (`2025-01-31T23:59:59Z`, optional
/// fraction, `Z` or `+hh:mm`); None when it does not parse.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => return None,
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.splitn(3, ':');
    let hour: i64 = c.next()?.parse().ok()?;
    let minute: i64 = c.next()?.parse().ok()?;
    let second: i64 = c.next()?.parse().ok()?;
    let offset_secs = match offset {
        "Z" | "z" => 0,
        _ => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (h, m) = offset.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second);
    if !valid {
        return None;
    }
    Some(
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
            - offset_secs,
    )
}

pub(crate) use mxscope_common::units::utc_minute as format_unix_ms;

/// A share as text: `12.5%`.
pub(crate) fn percent(p: f64) -> String {
    format!("{p:.1}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_numbers() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_rfc3339("2051-12-31T00:00:00Z"), Some(2_587_593_600));
        assert_eq!(
            parse_rfc3339("2000-03-01T01:00:00+01:00"),
            Some(951_868_800)
        );
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00.5Z"), Some(951_868_800));
        assert_eq!(parse_rfc3339(""), None);
        assert_eq!(parse_rfc3339("2000-13-01T00:00:00Z"), None);
        assert_eq!(
            format_unix_ms(951_868_800_000 + 3_660_000),
            "2000-03-01 01:01 UTC"
        );
    }

    #[test]
    fn protocol_rows_are_ordered() {
        assert!(protocol_order("TLSv1.3") < protocol_order("TLSv1.2"));
        assert!(protocol_order("SSLv3") < protocol_order("other"));
        assert!(protocol_order("other") < protocol_order("none"));
    }
}
