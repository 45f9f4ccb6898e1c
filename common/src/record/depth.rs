//! TLS depth (`--tls-depth`, DESIGN §4 "TLS depth, paid in sessions"): the
//! level asked for, the classes of suite a finding is about, and what the
//! extra hellos of a target learnt.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::record::tls_facts::KeyExchange;

/// How deep a probe looks at a server's TLS, in sessions paid per IP.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
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
pub enum DepthLevel {
    /// Facts from the sessions already opened (the default).
    #[default]
    Free,
    /// Per supported version, which classes of suite are accepted (group
    /// testing: about one session per accepted class, plus one), the
    /// fallback SCSV and one SSLv2 hello.
    Classes,
    /// Every accepted suite per version by iterative removal (about one
    /// session per accepted suite, plus one per chunk of candidates), the
    /// server's preference and whether it enforces it; also what `classes`
    /// learns.
    Suites,
    /// What `classes` learns, plus the intrusive checks (Heartbleed, CCS
    /// injection): one session each. Only against servers you may test.
    Vulns,
}

impl DepthLevel {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Classes => "classes",
            Self::Suites => "suites",
            Self::Vulns => "vulns",
        }
    }

    /// Whether the level opens sessions of its own.
    pub const fn extra_sessions(self) -> bool {
        !matches!(self, Self::Free)
    }
}

impl fmt::Display for DepthLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DepthLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Self::Free),
            "classes" => Ok(Self::Classes),
            "suites" => Ok(Self::Suites),
            "vulns" => Ok(Self::Vulns),
            other => Err(format!(
                "unknown TLS depth {other:?}: expected free, classes, suites or vulns"
            )),
        }
    }
}

/// A class of cipher suite that a finding is about. A suite belongs to
/// every class whose property it has (`TLS_RSA_EXPORT_WITH_RC4_40_MD5` is
/// export, RC4 and without forward secrecy).
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
pub enum SuiteClass {
    /// No encryption at all.
    Null,
    /// No server authentication (DH_anon, ECDH_anon).
    Anonymous,
    /// Export-grade (40/56-bit) key exchange or cipher.
    Export,
    Rc4,
    /// A 64-bit block cipher: 3DES, IDEA, DES, RC2 (SWEET32).
    Block64,
    /// CBC mode (BEAST in TLS 1.0, Lucky13 style padding oracles).
    Cbc,
    /// Key transport or static DH: no forward secrecy.
    NoForwardSecrecy,
    /// AEAD: GCM, CCM, ChaCha20-Poly1305 (all of TLS 1.3).
    Aead,
}

impl SuiteClass {
    /// Every class, weakest first (the order of [`Self::weakest`]).
    pub const ALL: [Self; 8] = [
        Self::Null,
        Self::Anonymous,
        Self::Export,
        Self::Rc4,
        Self::Block64,
        Self::Cbc,
        Self::NoForwardSecrecy,
        Self::Aead,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Anonymous => "anonymous",
            Self::Export => "export",
            Self::Rc4 => "rc4",
            Self::Block64 => "block64",
            Self::Cbc => "cbc",
            Self::NoForwardSecrecy => "no_forward_secrecy",
            Self::Aead => "aead",
        }
    }

    /// The classes of a suite, from its IANA name (`TLS_…_WITH_…`; TLS 1.3
    /// names `TLS_AES_…`, `TLS13_…` are AEAD with forward secrecy).
    pub fn of_suite(name: &str) -> Vec<Self> {
        let upper = name.to_ascii_uppercase();
        let mut classes = Vec::new();
        let kx = KeyExchange::of_suite(&upper);
        let cipher = upper.split("_WITH_").nth(1).unwrap_or(&upper);
        if cipher.starts_with("NULL") || upper == "TLS_NULL_WITH_NULL_NULL" {
            classes.push(Self::Null);
        }
        if upper.contains("_ANON_") {
            classes.push(Self::Anonymous);
        }
        if upper.contains("EXPORT") {
            classes.push(Self::Export);
        }
        if cipher.contains("RC4") {
            classes.push(Self::Rc4);
        }
        if ["3DES", "IDEA", "DES_", "DES40", "RC2"]
            .iter()
            .any(|c| cipher.contains(c))
        {
            classes.push(Self::Block64);
        }
        if cipher.contains("_CBC") || cipher.contains("CBC_") {
            classes.push(Self::Cbc);
        }
        if !kx.forward_secret() {
            classes.push(Self::NoForwardSecrecy);
        }
        if ["GCM", "CCM", "CHACHA20", "POLY1305"]
            .iter()
            .any(|c| cipher.contains(c))
            || kx == KeyExchange::Tls13
        {
            classes.push(Self::Aead);
        }
        classes
    }

    /// The weakest of `classes` on the ladder NULL, anonymous, EXPORT, RC4,
    /// 64-bit block, CBC, AEAD (forward secrecy is told apart on its own).
    pub fn weakest(classes: impl IntoIterator<Item = Self>) -> Option<Self> {
        classes
            .into_iter()
            .filter(|c| *c != Self::NoForwardSecrecy)
            .min()
    }
}

/// What the extra hellos of one protocol version learnt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionDepth {
    /// Classes of the accepted suites (their union).
    pub classes: Vec<SuiteClass>,
    /// Accepted suites (IANA names) in the order the server picked them
    /// (`suites` level only): the server's preference when it enforces one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
    /// Whether the server enforces its own order (`suites` level, two or
    /// more accepted suites); `None` when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_preference: Option<bool>,
    /// Accepted key-exchange groups (`suites` level; TLS 1.3, and TLS 1.2's
    /// ECDHE curves), in the order the server picked them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Hellos sent for this version (group hellos included).
    pub sessions: u32,
    /// False when the per-IP budget or an error stopped the enumeration:
    /// what is listed was seen, more may be accepted.
    pub complete: bool,
    /// Why it is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// A yes/no fact learnt from a hello, or why not.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tested {
    Yes,
    No,
    /// The hello got no usable answer.
    Error,
    #[default]
    NotTested,
}

impl Tested {
    pub fn is_not_tested(&self) -> bool {
        *self == Self::NotTested
    }

    pub fn from_bool(value: bool) -> Self {
        if value {
            Self::Yes
        } else {
            Self::No
        }
    }
}

/// What `--tls-depth` learnt about one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsDepth {
    pub level: DepthLevel,
    /// Per version key (`tls1_2`, as in `protocols`).
    pub versions: BTreeMap<String, VersionDepth>,
    /// Secure renegotiation (RFC 5746) in the highest pre-1.3 version's
    /// ServerHello.
    pub secure_renegotiation: Tested,
    /// Extended master secret (RFC 7627) echoed.
    pub extended_master_secret: Tested,
    /// The server chose DEFLATE when the hello offered it (CRIME).
    pub compression: Tested,
    /// A hello below the highest version with TLS_FALLBACK_SCSV was
    /// refused (`yes`: the server protects against downgrade).
    pub fallback_scsv: Tested,
    /// An SSLv2 CLIENT-HELLO was answered with a SERVER-HELLO (DROWN).
    pub sslv2: Tested,
    /// `classes` and up: the prime size (bits) of the ServerKeyExchange
    /// answering a hello that offered only finite-field DHE suites; absent
    /// when no DHE suite is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dh_bits: Option<u32>,
    /// That prime's name when it is a known one (`modp_1024`, `ffdhe2048`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dh_group: Option<String>,
    /// `vulns`: a heartbeat request claiming more than it carried was
    /// answered (`yes`: vulnerable to Heartbleed).
    #[serde(default, skip_serializing_if = "Tested::is_not_tested")]
    pub heartbleed: Tested,
    /// `vulns`: an early ChangeCipherSpec was taken in silence (`yes`:
    /// vulnerable to CCS injection).
    #[serde(default, skip_serializing_if = "Tested::is_not_tested")]
    pub ccs_injection: Tested,
    /// `vulns`: the server answered RSA key exchanges with malformed
    /// paddings differently, twice alike (`yes`: a Bleichenbacher oracle,
    /// ROBOT); `no` also when it accepts no RSA key exchange.
    #[serde(default, skip_serializing_if = "Tested::is_not_tested")]
    pub robot: Tested,
    /// `vulns`: what the ROBOT sessions saw (the oracle's strength and the
    /// answer to each payload, no RSA key exchange, or why no verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_detail: Option<String>,
    /// Every extra session of the depth probe.
    pub sessions: u32,
    /// Facts not measured because the per-IP budget ran out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_measured: Vec<String>,
}

impl TlsDepth {
    /// Every class accepted in any version.
    pub fn classes(&self) -> impl Iterator<Item = SuiteClass> + '_ {
        self.versions
            .values()
            .flat_map(|v| v.classes.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_suite_names() {
        use SuiteClass::*;
        let cases: &[(&str, &[SuiteClass])] = &[
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", &[Aead]),
            ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", &[Cbc]),
            ("TLS_RSA_WITH_AES_256_GCM_SHA384", &[NoForwardSecrecy, Aead]),
            (
                "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                &[Block64, Cbc, NoForwardSecrecy],
            ),
            (
                "TLS_RSA_WITH_IDEA_CBC_SHA",
                &[Block64, Cbc, NoForwardSecrecy],
            ),
            ("TLS_RSA_WITH_RC4_128_MD5", &[Rc4, NoForwardSecrecy]),
            (
                "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
                &[Export, Rc4, NoForwardSecrecy],
            ),
            (
                "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA",
                &[Export, Block64, Cbc],
            ),
            ("TLS_RSA_WITH_NULL_SHA256", &[Null, NoForwardSecrecy]),
            ("TLS_ECDHE_RSA_WITH_NULL_SHA", &[Null]),
            (
                "TLS_DH_anon_WITH_AES_256_GCM_SHA384",
                &[Anonymous, NoForwardSecrecy, Aead],
            ),
            (
                "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",
                &[Anonymous, Cbc, NoForwardSecrecy],
            ),
            ("TLS_AES_128_GCM_SHA256", &[Aead]),
            ("TLS13_CHACHA20_POLY1305_SHA256", &[Aead]),
            ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", &[Aead]),
            ("TLS_DHE_RSA_WITH_AES_128_CCM", &[Aead]),
        ];
        for (name, classes) in cases {
            assert_eq!(SuiteClass::of_suite(name), classes.to_vec(), "{name}");
        }
        assert_eq!(
            SuiteClass::weakest([Aead, NoForwardSecrecy, Cbc]),
            Some(Cbc)
        );
        assert_eq!(SuiteClass::weakest([NoForwardSecrecy]), None);
    }

    #[test]
    fn levels_parse_and_order() {
        for level in [
            DepthLevel::Free,
            DepthLevel::Classes,
            DepthLevel::Suites,
            DepthLevel::Vulns,
        ] {
            assert_eq!(level.name().parse::<DepthLevel>(), Ok(level));
        }
        assert!("deep".parse::<DepthLevel>().is_err());
        assert!(DepthLevel::Suites > DepthLevel::Classes);
    }
}
