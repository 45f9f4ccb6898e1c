//! The candidate suites of each protocol version: every IANA-registered
//! suite tls-parser knows, those a permissive OpenSSL client offers first
//! (so that the first chunk holds what servers really accept), then the
//! rest by number.

use std::sync::OnceLock;

use mxscope_common::SuiteClass;
use tls_parser::{
    TlsCipherAu, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite, CIPHERS,
};

use crate::tls::legacy::LegacyVersion;

/// TLS 1.3's five suites (RFC 8446 §B.4).
pub const TLS13_SUITES: [u16; 5] = [0x1301, 0x1302, 0x1303, 0x1304, 0x1305];

/// Never candidates: the renegotiation and fallback signals (RFC 5746,
/// RFC 7507), and TLS_NULL_WITH_NULL_NULL, which no server may choose.
const SIGNALS: [u16; 3] = [0x00ff, 0x5600, 0x0000];

/// A protocol version the depth probe enumerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepthVersion {
    Legacy(LegacyVersion),
    Tls13,
}

impl DepthVersion {
    /// Newest first: the order the depth probe spends its budget in.
    pub const ALL: [Self; 5] = [
        Self::Tls13,
        Self::Legacy(LegacyVersion::Tls1_2),
        Self::Legacy(LegacyVersion::Tls1_1),
        Self::Legacy(LegacyVersion::Tls1_0),
        Self::Legacy(LegacyVersion::Ssl3),
    ];

    pub const fn wire(self) -> u16 {
        match self {
            Self::Legacy(v) => v.wire(),
            Self::Tls13 => 0x0304,
        }
    }

    /// The record's `protocols` key.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Legacy(v) => v.key(),
            Self::Tls13 => "tls1_3",
        }
    }
}

/// Every candidate suite for `version`, in offering order, with its
/// classes: built once per process (two lists: TLS 1.2, and before it),
/// not once per target.
pub fn candidates(version: DepthVersion) -> &'static [(u16, Vec<SuiteClass>)] {
    static TLS12: OnceLock<Vec<(u16, Vec<SuiteClass>)>> = OnceLock::new();
    static OLDER: OnceLock<Vec<(u16, Vec<SuiteClass>)>> = OnceLock::new();
    static TLS13: OnceLock<Vec<(u16, Vec<SuiteClass>)>> = OnceLock::new();
    let with_classes = |ids: Vec<u16>| ids.into_iter().map(|id| (id, classes(id))).collect();
    match version {
        DepthVersion::Tls13 => TLS13.get_or_init(|| with_classes(TLS13_SUITES.to_vec())),
        DepthVersion::Legacy(LegacyVersion::Tls1_2) => {
            TLS12.get_or_init(|| with_classes(legacy_candidates(LegacyVersion::Tls1_2)))
        }
        DepthVersion::Legacy(_) => {
            OLDER.get_or_init(|| with_classes(legacy_candidates(LegacyVersion::Tls1_0)))
        }
    }
}

/// The suite ids of [`candidates`] for a version before TLS 1.3.
fn legacy_candidates(legacy: LegacyVersion) -> Vec<u16> {
    let mut first: Vec<u16> = crate::tls::legacy::permissive_suites().to_vec();
    let mut rest: Vec<&TlsCipherSuite> = CIPHERS
        .values()
        .filter(|s| !first.contains(&s.id.0))
        .collect();
    rest.sort_unstable_by_key(|s| (rank(s), s.id.0));
    first.extend(rest.iter().map(|s| s.id.0));
    first.retain(|id| {
        !SIGNALS.contains(id)
            && !TLS13_SUITES.contains(id)
            && TlsCipherSuite::from_id(*id).is_some_and(|s| fits(s, legacy))
    });
    first
}

/// The order of the suites beyond the permissive list: what OpenSSL and
/// GnuTLS servers still implement (RSA, DHE, ECDHE and anonymous key
/// exchange: the weak classes among them), then static DH/ECDH, then suites
/// that need a pre-shared key, SRP, Kerberos or a password, which no server
/// picks for a hello without those extensions.
fn rank(suite: &TlsCipherSuite) -> u8 {
    let anonymous = suite.au == TlsCipherAu::Null;
    if needs_credentials(suite) {
        3
    } else if matches!(suite.kx, TlsCipherKx::Dh | TlsCipherKx::Ecdh) && !anonymous {
        2
    } else if matches!(suite.enc, TlsCipherEnc::Sm4 | TlsCipherEnc::Aegis) {
        1
    } else {
        0
    }
}

fn needs_credentials(suite: &TlsCipherSuite) -> bool {
    matches!(
        suite.kx,
        TlsCipherKx::Psk | TlsCipherKx::Srp | TlsCipherKx::Krb5 | TlsCipherKx::Eccpwd
    ) || matches!(
        suite.au,
        TlsCipherAu::Psk
            | TlsCipherAu::Srp
            | TlsCipherAu::Srp_Dss
            | TlsCipherAu::Srp_Rsa
            | TlsCipherAu::Krb5
    )
}

/// Whether a suite may be negotiated in `version`: AEAD ciphers and
/// SHA-2 MACs came with TLS 1.2 (RFC 5246), TLS 1.3 suites are apart.
fn fits(suite: &TlsCipherSuite, version: LegacyVersion) -> bool {
    if suite.kx == TlsCipherKx::Tls13 {
        return false;
    }
    let tls12_only = matches!(
        suite.enc_mode,
        TlsCipherEncMode::Gcm | TlsCipherEncMode::Ccm
    ) || matches!(
        suite.enc,
        TlsCipherEnc::Chacha20_Poly1305 | TlsCipherEnc::Aegis
    ) || matches!(
        suite.mac,
        TlsCipherMac::HmacSha256
            | TlsCipherMac::HmacSha384
            | TlsCipherMac::HmacSha512
            | TlsCipherMac::Aead
    );
    version == LegacyVersion::Tls1_2 || !tls12_only
}

/// The groups offered in TLS 1.3: x25519, secp256r1, secp384r1,
/// secp521r1, x448, ffdhe2048 … ffdhe8192 (RFC 8446 §4.2.7).
pub const TLS13_GROUPS: [u16; 10] = [
    0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104,
];
/// The curves offered with ECDHE before TLS 1.3 (RFC 8422).
pub const EC_GROUPS: [u16; 5] = [0x001d, 0x0017, 0x0018, 0x0019, 0x001e];

/// IANA name of a group (`x25519`, `secp256r1`, `ffdhe2048`), or its number.
pub fn group_name(id: u16) -> String {
    match id {
        0x0017 => "secp256r1".into(),
        0x0018 => "secp384r1".into(),
        0x0019 => "secp521r1".into(),
        0x001d => "x25519".into(),
        0x001e => "x448".into(),
        0x0100 => "ffdhe2048".into(),
        0x0101 => "ffdhe3072".into(),
        0x0102 => "ffdhe4096".into(),
        0x0103 => "ffdhe6144".into(),
        0x0104 => "ffdhe8192".into(),
        other => format!("0x{other:04x}"),
    }
}

/// IANA name of a suite, or its number.
pub fn suite_name(id: u16) -> String {
    TlsCipherSuite::from_id(id).map_or_else(|| format!("0x{id:04x}"), |s| s.name.to_owned())
}

/// The classes of a suite (see [`SuiteClass::of_suite`]).
pub fn classes(id: u16) -> Vec<SuiteClass> {
    SuiteClass::of_suite(&suite_name(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_fit_their_version() {
        let ids = |v| -> Vec<u16> { candidates(v).iter().map(|(id, _)| *id).collect() };
        let tls12 = ids(DepthVersion::Legacy(LegacyVersion::Tls1_2));
        let tls10 = ids(DepthVersion::Legacy(LegacyVersion::Tls1_0));
        assert_eq!(tls10, ids(DepthVersion::Legacy(LegacyVersion::Ssl3)));
        assert!(candidates(DepthVersion::Legacy(LegacyVersion::Tls1_2))
            .iter()
            .all(|(id, classes)| *classes == super::classes(*id)));
        assert!(tls12.len() > 250, "{} TLS 1.2 candidates", tls12.len());
        let first_chunk = &tls12[..super::super::plan::CHUNK];
        let implemented = tls12
            .iter()
            .filter(|id| TlsCipherSuite::from_id(**id).is_some_and(|s| rank(s) == 0));
        assert!(
            implemented.count() <= super::super::plan::CHUNK,
            "what servers implement fits in the first chunk"
        );
        for id in [0x00a7, 0x0018, 0xc019, 0x0002, 0x003b, 0xc051] {
            assert!(first_chunk.contains(&id), "0x{id:04x} in the first chunk");
        }
        assert!(tls10.len() > 100 && tls10.len() < tls12.len());
        assert_eq!(tls12[0], 0xc02c, "the permissive list comes first");
        assert!(tls12.contains(&0x00a7), "DH_anon with AES-256-GCM");
        assert!(!tls10.contains(&0xc02f), "no GCM before TLS 1.2");
        assert!(tls10.contains(&0xc013) && tls10.contains(&0x0003));
        for list in [&tls12, &tls10] {
            assert!(!list.contains(&0x00ff) && !list.contains(&0x5600) && !list.contains(&0x1301));
            let mut unique = list.to_vec();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), list.len());
        }
        assert_eq!(ids(DepthVersion::Tls13), TLS13_SUITES.to_vec());
    }
}
