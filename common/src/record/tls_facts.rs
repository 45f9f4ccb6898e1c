//! Record types about how a TLS session came about (schema 2, additive):
//! why a handshake failed, where the TLS facts came from, the key exchange,
//! the suite each protocol version chose, the certificate per MX name and
//! its verification (re-exported as `record::Verification`).

use serde::{Deserialize, Serialize};

/// Certificate verification result (chain and validity; names are in `name_match`).
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

/// Why the TLS handshake after STARTTLS did not complete (a fact, never a
/// string to classify; the server's or the stack's own words are in
/// `detail`).
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
pub enum HandshakeFailure {
    /// No handshake within the handshake timeout (or the session deadline).
    Timeout,
    /// The server closed or reset the connection mid-handshake.
    Closed,
    /// The server sent a fatal alert (`handshake_alert` names it), e.g.
    /// `protocol_version` or `handshake_failure` when nothing we offered suits it.
    AlertReceived,
    /// The client found nothing in common with the server's choices (version,
    /// suite, group, signature scheme).
    NoCommonParameters,
    /// The server broke the protocol in a way the client refused.
    PeerMisbehaved,
    /// What came back is not TLS, or a malformed TLS message (e.g. plaintext
    /// SMTP after `220` to STARTTLS).
    InvalidMessage,
    /// A handshake message or the whole first flight exceeded its bound.
    Oversized,
    /// The server's certificate could not be used at all (none was sent).
    CertificateUnusable,
    /// The server's handshake signature does not verify with its
    /// certificate's key: it does not hold that key (a copied certificate,
    /// as an interceptor would present). OpenSSL refuses it too.
    BadSignature,
    /// A local I/O error other than a close or reset.
    IoError,
    /// Anything else; `detail` says what.
    Other,
}

/// Where a target's TLS facts come from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TlsSource {
    /// A complete handshake by the modern stack (rustls, TLS 1.2/1.3).
    #[default]
    Handshake,
    /// The modern stack could not complete; the facts were read from the
    /// server's first flight (ServerHello, Certificate, ServerKeyExchange)
    /// after a hand-built ClientHello such as a permissive OpenSSL client
    /// sends. Such a host supports STARTTLS with these facts.
    FirstFlight,
}

impl TlsSource {
    /// Serde helper: the default source is not written.
    pub fn is_handshake(&self) -> bool {
        *self == Self::Handshake
    }
}

/// How the session key was agreed.
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
pub enum KeyExchange {
    /// TLS 1.3 (always ephemeral (EC)DHE).
    Tls13,
    /// Ephemeral elliptic-curve Diffie-Hellman (forward secret).
    Ecdhe,
    /// Ephemeral finite-field Diffie-Hellman (forward secret).
    Dhe,
    /// RSA key transport (no forward secrecy).
    Rsa,
    /// Static or anonymous DH/ECDH, PSK, SRP, ...
    Other,
}

impl KeyExchange {
    /// Whether a recorded session key survives a later theft of the server key.
    pub fn forward_secret(self) -> bool {
        matches!(self, Self::Tls13 | Self::Ecdhe | Self::Dhe)
    }

    /// The key exchange of a TLS 1.0–1.2 suite, from its IANA name
    /// (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); TLS 1.3 suites
    /// (`TLS13_…`, `TLS_AES_…`, `TLS_CHACHA20_…`) are [`Self::Tls13`].
    pub fn of_suite(name: &str) -> Self {
        let name = name.to_ascii_uppercase();
        if name.starts_with("TLS13_") || (name.starts_with("TLS_") && !name.contains("_WITH_")) {
            return Self::Tls13;
        }
        let kx = name
            .trim_start_matches("TLS_")
            .trim_start_matches("SSL_")
            .split("_WITH_")
            .next()
            .unwrap_or_default();
        match kx.split('_').next().unwrap_or_default() {
            "ECDHE" => Self::Ecdhe,
            "DHE" | "EDH" => Self::Dhe,
            "RSA" => Self::Rsa,
            _ => Self::Other,
        }
    }
}

/// The suite a server chose for one protocol version, and what it implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuiteChoice {
    /// IANA name.
    pub cipher: String,
    pub key_exchange: KeyExchange,
    pub forward_secrecy: bool,
}

impl SuiteChoice {
    pub fn new(cipher: impl Into<String>) -> Self {
        let cipher = cipher.into();
        let key_exchange = KeyExchange::of_suite(&cipher);
        Self {
            forward_secrecy: key_exchange.forward_secret(),
            key_exchange,
            cipher,
        }
    }
}

/// The certificate a server presents for one MX name (SNI) at one IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NameCertificate {
    /// Whether the leaf covers this MX name (RFC 6125); `None` when not checked.
    pub name_match: Option<bool>,
    pub check: NameCheck,
    /// SHA-256 of the leaf's DER (lowercase hex), when a certificate was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_sha256: Option<String>,
    /// The leaf's subject, when a certificate was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_subject: Option<String>,
    /// Chain verification of that leaf (names aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// How a name's certificate was learnt.
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
pub enum NameCheck {
    /// The main session's SNI was this name.
    MainSession,
    /// The main session's certificate already covered this name.
    CoveredByMain,
    /// One more session with this name as SNI.
    OwnSession,
    /// That session failed; the main session's certificate is what we know.
    SessionFailed,
    /// Over the per-IP bound of extra sessions; the main session's
    /// certificate is what we know.
    NotChecked,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_exchange_from_suite_names() {
        let cases = [
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", KeyExchange::Ecdhe),
            ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", KeyExchange::Dhe),
            ("TLS_RSA_WITH_AES_128_CBC_SHA", KeyExchange::Rsa),
            ("TLS13_AES_128_GCM_SHA256", KeyExchange::Tls13),
            ("TLS_AES_256_GCM_SHA384", KeyExchange::Tls13),
            ("TLS_DH_anon_WITH_AES_128_CBC_SHA", KeyExchange::Other),
            ("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", KeyExchange::Other),
        ];
        for (name, kx) in cases {
            assert_eq!(KeyExchange::of_suite(name), kx, "{name}");
        }
        assert!(SuiteChoice::new("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA").forward_secrecy);
        assert!(!SuiteChoice::new("TLS_RSA_WITH_AES_128_CBC_SHA256").forward_secrecy);
    }
}
