//! Known weaknesses as data (DESIGN §4, issue 23 item 4): every finding a
//! target can have is defined here, once — its id, severity, CVE and CWE —
//! and [`derive`] is the one function that decides them from a target
//! record's facts. The worker stores them on the record (`findings`); the
//! report counts hosts per finding and exports one row per finding.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::record::{SuiteClass, TargetRecord, Tested, VersionSupport};

/// A known weakness of a server's TLS.
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
pub enum FindingId {
    /// SSLv2 answered (DROWN).
    Sslv2,
    /// SSLv3 supported (POODLE).
    Sslv3,
    /// A CBC suite accepted in TLS 1.0 (BEAST).
    Tls10Cbc,
    /// A 64-bit block cipher accepted (SWEET32).
    Sweet32,
    Rc4,
    NullCipher,
    Export,
    AnonymousSuite,
    /// Finite-field DH of 1024 bits or less, or export DHE (Logjam).
    Logjam,
    /// No RFC 5746 renegotiation_info in the ServerHello.
    NoSecureRenegotiation,
    /// TLS compression chosen (CRIME).
    Compression,
    /// A downgraded hello with TLS_FALLBACK_SCSV was accepted.
    NoFallbackScsv,
    /// A certificate of the chain (the trust anchor aside) signed with SHA-1.
    Sha1Signature,
    /// The leaf's RSA key is shorter than 2048 bits.
    RsaUnder2048,
    /// A suite without forward secrecy accepted.
    NoForwardSecrecy,
    /// A heartbeat request was answered with more than it carried.
    Heartbleed,
    /// An early ChangeCipherSpec was accepted.
    CcsInjection,
    /// RSA key exchange answered as a padding oracle (ROBOT).
    Robot,
}

/// How bad a finding is, for sorting a notification.
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
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// A finding's fixed definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    pub id: FindingId,
    pub severity: Severity,
    /// What it means, for people.
    pub title: &'static str,
    pub cve: &'static [&'static str],
    pub cwe: Option<&'static str>,
}

/// Every finding, in report order (worst first within a family).
pub const DEFINITIONS: &[Definition] = &[
    def(
        FindingId::Heartbleed,
        Severity::Critical,
        "heartbeat over-read (Heartbleed)",
        &["CVE-2014-0160"],
        Some("CWE-125"),
    ),
    def(
        FindingId::CcsInjection,
        Severity::High,
        "early ChangeCipherSpec accepted (CCS injection)",
        &["CVE-2014-0224"],
        Some("CWE-310"),
    ),
    def(
        FindingId::Robot,
        Severity::High,
        "RSA padding oracle (ROBOT)",
        &[
            "CVE-2017-13099",
            "CVE-2017-17382",
            "CVE-2017-17427",
            "CVE-2017-13098",
            "CVE-2017-1000385",
            "CVE-2016-6883",
            "CVE-2012-5081",
        ],
        Some("CWE-203"),
    ),
    def(
        FindingId::Sslv2,
        Severity::Critical,
        "SSLv2 answered (DROWN)",
        &["CVE-2016-0800"],
        Some("CWE-327"),
    ),
    def(
        FindingId::Sslv3,
        Severity::High,
        "SSLv3 supported (POODLE)",
        &["CVE-2014-3566"],
        Some("CWE-327"),
    ),
    def(
        FindingId::NullCipher,
        Severity::Critical,
        "NULL cipher accepted (no encryption)",
        &[],
        Some("CWE-319"),
    ),
    def(
        FindingId::AnonymousSuite,
        Severity::High,
        "anonymous suite accepted (no server authentication)",
        &[],
        Some("CWE-287"),
    ),
    def(
        FindingId::Export,
        Severity::High,
        "export-grade suite accepted (FREAK)",
        &["CVE-2015-0204"],
        Some("CWE-326"),
    ),
    def(
        FindingId::Logjam,
        Severity::High,
        "DH group of 1024 bits or less, or export DHE (Logjam)",
        &["CVE-2015-4000"],
        Some("CWE-326"),
    ),
    def(
        FindingId::Rc4,
        Severity::Medium,
        "RC4 accepted",
        &["CVE-2013-2566", "CVE-2015-2808"],
        Some("CWE-327"),
    ),
    def(
        FindingId::Sweet32,
        Severity::Medium,
        "64-bit block cipher accepted (SWEET32)",
        &["CVE-2016-2183"],
        Some("CWE-327"),
    ),
    def(
        FindingId::Tls10Cbc,
        Severity::Low,
        "CBC suite accepted in TLS 1.0 (BEAST)",
        &["CVE-2011-3389"],
        Some("CWE-327"),
    ),
    def(
        FindingId::Compression,
        Severity::Medium,
        "TLS compression chosen (CRIME)",
        &["CVE-2012-4929"],
        Some("CWE-200"),
    ),
    def(
        FindingId::NoSecureRenegotiation,
        Severity::Medium,
        "no secure renegotiation (RFC 5746)",
        &["CVE-2009-3555"],
        Some("CWE-310"),
    ),
    def(
        FindingId::NoFallbackScsv,
        Severity::Low,
        "downgrade not refused (no TLS_FALLBACK_SCSV)",
        &[],
        Some("CWE-757"),
    ),
    def(
        FindingId::Sha1Signature,
        Severity::Medium,
        "certificate signed with SHA-1",
        &[],
        Some("CWE-328"),
    ),
    def(
        FindingId::RsaUnder2048,
        Severity::Medium,
        "RSA key shorter than 2048 bits",
        &[],
        Some("CWE-326"),
    ),
    def(
        FindingId::NoForwardSecrecy,
        Severity::Low,
        "suite without forward secrecy accepted",
        &[],
        Some("CWE-326"),
    ),
];

const fn def(
    id: FindingId,
    severity: Severity,
    title: &'static str,
    cve: &'static [&'static str],
    cwe: Option<&'static str>,
) -> Definition {
    Definition {
        id,
        severity,
        title,
        cve,
        cwe,
    }
}

impl FindingId {
    pub fn definition(self) -> &'static Definition {
        DEFINITIONS
            .iter()
            .find(|d| d.id == self)
            .expect("every finding id has a definition (tested)")
    }

    /// The id as records and tables spell it (`no_fallback_scsv`).
    pub fn name(self) -> String {
        crate::record::snake(&self)
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One finding on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    /// The version, suite, group or reply that shows it.
    pub evidence: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cve: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwe: Option<String>,
}

impl Finding {
    fn new(id: FindingId, evidence: impl Into<String>) -> Self {
        let d = id.definition();
        Self {
            id,
            severity: d.severity,
            evidence: evidence.into(),
            cve: d.cve.iter().map(|c| (*c).to_owned()).collect(),
            cwe: d.cwe.map(str::to_owned),
        }
    }
}

/// A suite seen accepted, or a class seen accepted without a suite name.
struct Seen {
    version: String,
    suite: Option<String>,
    classes: Vec<SuiteClass>,
}

impl Seen {
    fn evidence(&self) -> String {
        match &self.suite {
            Some(suite) => format!("{}: {suite}", self.version),
            None => format!("{}: a suite of the class", self.version),
        }
    }
}

/// Every suite (or class) the record shows accepted: the main session, the
/// legacy probes' choices and the depth probe's lists.
fn seen(record: &TargetRecord) -> Vec<Seen> {
    let mut seen = Vec::new();
    let suite = |version: &str, name: &str| Seen {
        version: version.to_owned(),
        suite: Some(name.to_owned()),
        classes: SuiteClass::of_suite(name),
    };
    if let Some(tls) = &record.tls {
        seen.push(suite(&version_key(&tls.version), &tls.cipher));
    }
    for (version, choice) in &record.protocol_suites {
        seen.push(suite(version, &choice.cipher));
    }
    if let Some(depth) = &record.tls_depth {
        for (version, v) in &depth.versions {
            seen.extend(v.accepted.iter().map(|name| suite(version, name)));
            seen.push(Seen {
                version: version.clone(),
                suite: None,
                classes: v.classes.clone(),
            });
        }
    }
    seen
}

/// `TLSv1.2` → `tls1_2` (the `protocols` keys); other spellings as they are.
fn version_key(version: &str) -> String {
    match version {
        "SSLv3" => "ssl3".into(),
        "TLSv1.0" => "tls1_0".into(),
        "TLSv1.1" => "tls1_1".into(),
        "TLSv1.2" => "tls1_2".into(),
        "TLSv1.3" => "tls1_3".into(),
        other => other.into(),
    }
}

/// The findings the record's facts show, in [`DEFINITIONS`] order, one per
/// id (the first evidence seen). A fact that was not measured shows nothing.
pub fn derive(record: &TargetRecord) -> Vec<Finding> {
    let seen = seen(record);
    let mut found: Vec<Finding> = Vec::new();
    let with_class = |class: SuiteClass, version: Option<&str>| {
        seen.iter()
            .filter(|s| version.is_none_or(|v| s.version == v))
            .filter(|s| s.classes.contains(&class))
            // A named suite is better evidence than a class.
            .min_by_key(|s| s.suite.is_none())
            .map(Seen::evidence)
    };
    let depth = record.tls_depth.as_ref();
    let tested = |f: fn(&crate::record::TlsDepth) -> Tested| depth.map_or(Tested::NotTested, f);

    if tested(|d| d.heartbleed) == Tested::Yes {
        found.push(Finding::new(
            FindingId::Heartbleed,
            "a heartbeat response to a request claiming 16384 bytes (the bytes were discarded)",
        ));
    }
    if tested(|d| d.ccs_injection) == Tested::Yes {
        found.push(Finding::new(
            FindingId::CcsInjection,
            "no alert to a ChangeCipherSpec sent before any key exchange",
        ));
    }
    if let Some(d) = depth.filter(|d| d.robot == Tested::Yes) {
        let evidence = d.robot_detail.as_deref().unwrap_or("RSA padding oracle");
        found.push(Finding::new(FindingId::Robot, evidence));
    }
    if tested(|d| d.sslv2) == Tested::Yes {
        found.push(Finding::new(
            FindingId::Sslv2,
            "an SSLv2 CLIENT-HELLO was answered",
        ));
    }
    if record.protocols.ssl3 == VersionSupport::Supported {
        found.push(Finding::new(FindingId::Sslv3, "ssl3 supported"));
    }
    let classes = [
        (FindingId::NullCipher, SuiteClass::Null),
        (FindingId::AnonymousSuite, SuiteClass::Anonymous),
        (FindingId::Export, SuiteClass::Export),
    ];
    for (id, class) in classes {
        if let Some(evidence) = with_class(class, None) {
            found.push(Finding::new(id, evidence));
        }
    }
    // The main session's DH (a first flight), else the depth's DHE hello.
    let tls_dh = record
        .tls
        .as_ref()
        .and_then(|t| Some((t.dh_bits?, t.dh_group.as_deref())));
    let depth_dh = depth.and_then(|d| Some((d.dh_bits?, d.dh_group.as_deref())));
    let weak_dh = [tls_dh, depth_dh]
        .into_iter()
        .flatten()
        .find(|(bits, _)| *bits <= 1024)
        .map(|(bits, group)| match group {
            Some(name) => format!("DHE with a {bits}-bit prime: {name}, a common one"),
            None => format!("DHE with a {bits}-bit prime"),
        });
    let export_dhe = seen
        .iter()
        .filter_map(|s| s.suite.as_deref().map(|name| (s, name)))
        .find(|(_, name)| name.contains("DHE_") && name.contains("EXPORT"))
        .map(|(s, _)| s.evidence());
    if let Some(evidence) = weak_dh.or(export_dhe) {
        found.push(Finding::new(FindingId::Logjam, evidence));
    }
    for (id, class) in [
        (FindingId::Rc4, SuiteClass::Rc4),
        (FindingId::Sweet32, SuiteClass::Block64),
    ] {
        if let Some(evidence) = with_class(class, None) {
            found.push(Finding::new(id, evidence));
        }
    }
    if record.protocols.tls1_0 == VersionSupport::Supported {
        if let Some(evidence) = with_class(SuiteClass::Cbc, Some("tls1_0")) {
            found.push(Finding::new(FindingId::Tls10Cbc, evidence));
        }
    }
    if tested(|d| d.compression) == Tested::Yes {
        found.push(Finding::new(
            FindingId::Compression,
            "the server chose DEFLATE",
        ));
    }
    if tested(|d| d.secure_renegotiation) == Tested::No {
        found.push(Finding::new(
            FindingId::NoSecureRenegotiation,
            "no renegotiation_info in the ServerHello",
        ));
    }
    if tested(|d| d.fallback_scsv) == Tested::No {
        found.push(Finding::new(
            FindingId::NoFallbackScsv,
            "a lower version with TLS_FALLBACK_SCSV was accepted",
        ));
    }
    if let Some(tls) = &record.tls {
        let last = tls.chain.len().saturating_sub(1);
        let sha1 = tls.chain.iter().enumerate().find(|(i, c)| {
            c.parsed
                && !(*i == last && c.self_signed && last > 0)
                && c.signature_algorithm.to_ascii_lowercase().contains("sha1")
        });
        if let Some((i, cert)) = sha1 {
            found.push(Finding::new(
                FindingId::Sha1Signature,
                format!(
                    "certificate {i} ({}): {}",
                    cert.subject, cert.signature_algorithm
                ),
            ));
        }
        if let Some(leaf) = tls.chain.first() {
            if let (true, Some(bits)) = (leaf.key.key_type == "RSA", leaf.key.bits) {
                if bits < 2048 {
                    found.push(Finding::new(
                        FindingId::RsaUnder2048,
                        format!("leaf RSA key of {bits} bits"),
                    ));
                }
            }
        }
    }
    if let Some(evidence) = with_class(SuiteClass::NoForwardSecrecy, None) {
        found.push(Finding::new(FindingId::NoForwardSecrecy, evidence));
    }
    let order: Vec<FindingId> = DEFINITIONS.iter().map(|d| d.id).collect();
    found.sort_by_key(|f| order.iter().position(|id| *id == f.id));
    let mut ids = BTreeSet::new();
    found.retain(|f| ids.insert(f.id));
    found
}

#[cfg(test)]
mod tests;
