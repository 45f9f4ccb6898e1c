//! The TLS handshake after STARTTLS, as an opportunistic MTA does it.
//!
//! The certificate verifier *records* instead of rejecting: the chain is
//! checked against Mozilla's roots (or `--ca-file`) and the result kept as a
//! fact, while the handshake goes on whatever it found — an expired,
//! self-signed or weak-keyed server is measured, not refused (DESIGN §4).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mxscope_common::{CertInfo, HandshakeFailure, KeyExchange, TlsFacts, TlsSource, Verification};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, IpAddr as PkiIpAddr, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::tls::{cert, roots, signature as tls_signature};

/// Errors preparing TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The `--ca-file` could not be read or holds no certificate; check the path and PEM.
    #[error("reading CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    /// rustls rejected the configuration (a bug: report it).
    #[error("building the TLS configuration: {0}")]
    Config(String),
}

/// Why a handshake did not complete: the typed reason, the alert the server
/// sent (if any) and the stack's own words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeError {
    pub kind: HandshakeFailure,
    pub alert: Option<String>,
    pub detail: String,
}

impl HandshakeError {
    fn new(kind: HandshakeFailure, detail: impl Into<String>) -> Self {
        Self {
            kind,
            alert: None,
            detail: detail.into(),
        }
    }

    /// Failures where a permissive OpenSSL client might still get through:
    /// the server refused what rustls offers (an alert, or just closing),
    /// or chose something rustls cannot do. Timeouts and non-TLS answers
    /// would only repeat themselves.
    pub fn worth_first_flight(&self) -> bool {
        matches!(
            self.kind,
            HandshakeFailure::AlertReceived
                | HandshakeFailure::NoCommonParameters
                | HandshakeFailure::PeerMisbehaved
                | HandshakeFailure::Closed
        )
    }

    /// Classify what tokio-rustls returned (rustls errors travel inside
    /// `io::Error`).
    fn from_io(error: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::from_rustls(tls);
        }
        let kind = match error.kind() {
            ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe => HandshakeFailure::Closed,
            ErrorKind::TimedOut => HandshakeFailure::Timeout,
            _ => HandshakeFailure::IoError,
        };
        Self::new(kind, error.to_string())
    }

    fn from_rustls(error: &rustls::Error) -> Self {
        use rustls::{Error, InvalidMessage};
        let detail = error.to_string();
        let kind = match error {
            Error::AlertReceived(alert) => {
                return Self {
                    kind: HandshakeFailure::AlertReceived,
                    alert: Some(crate::tls::legacy::alert_name(u8::from(*alert))),
                    detail,
                }
            }
            Error::PeerIncompatible(_) => HandshakeFailure::NoCommonParameters,
            Error::PeerMisbehaved(_) => HandshakeFailure::PeerMisbehaved,
            Error::InvalidMessage(
                InvalidMessage::HandshakePayloadTooLarge | InvalidMessage::MessageTooLarge,
            ) => HandshakeFailure::Oversized,
            Error::InvalidMessage(_)
            | Error::InappropriateMessage { .. }
            | Error::InappropriateHandshakeMessage { .. } => HandshakeFailure::InvalidMessage,
            Error::NoCertificatesPresented | Error::InvalidCertificate(_) => {
                HandshakeFailure::CertificateUnusable
            }
            _ => HandshakeFailure::Other,
        };
        Self::new(kind, detail)
    }
}

/// Which versions a handshake may negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.2 and 1.3, like a modern MTA.
    Modern,
    /// TLS 1.2 only (to learn 1.2 support of a 1.3 server).
    Tls12Only,
}

/// Trust roots and crypto provider, built once per process.
#[derive(Debug, Clone)]
pub struct TlsContext {
    provider: Arc<CryptoProvider>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl TlsContext {
    /// Trust Mozilla's roots, or only the certificates of `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>) -> Result<Self, TlsSetupError> {
        let Some(path) = ca_file else {
            return Self::with_roots(roots::mozilla());
        };
        let roots = roots::from_file(path).map_err(|reason| TlsSetupError::CaFile {
            path: path.display().to_string(),
            reason,
        })?;
        Self::with_roots(roots)
    }

    /// Trust only the certificates of a PEM bundle (a scan's `ca_pem`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsSetupError> {
        let roots = roots::from_pem(pem).map_err(|reason| TlsSetupError::CaFile {
            path: "(PEM bundle)".to_string(),
            reason,
        })?;
        Self::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsSetupError::Config(e.to_string()))?;
        Ok(Self { provider, webpki })
    }

    /// Run the client handshake over `stream` with SNI `sni`, recording the
    /// facts; `names` are every MX name pointing at this IP (for name match).
    pub async fn handshake<S>(
        &self,
        stream: S,
        sni: &str,
        names: &[String],
        versions: Versions,
        timeout: Duration,
    ) -> Result<(TlsStream<S>, TlsFacts), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let recorder = Arc::new(Recorder {
            webpki: self.webpki.clone(),
            algorithms: self.provider.signature_verification_algorithms,
            seen: Mutex::new(None),
            bad_signature: AtomicBool::new(false),
            scheme: Mutex::new(None),
            ocsp: Mutex::new(None),
        });
        let protocol_versions: &[&rustls::SupportedProtocolVersion] = match versions {
            Versions::Modern => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Versions::Tls12Only => &[&rustls::version::TLS12],
        };
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(protocol_versions)
            .map_err(|e| HandshakeError::new(HandshakeFailure::Other, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let server_name = server_name(sni);
        let connector = TlsConnector::from(Arc::new(config));
        let tls = match tokio::time::timeout(timeout, connector.connect(server_name, stream)).await
        {
            Err(_) => {
                return Err(HandshakeError::new(
                    HandshakeFailure::Timeout,
                    format!("tls handshake timed out after {timeout:?}"),
                ))
            }
            Ok(Err(_)) if recorder.bad_signature.load(Ordering::Relaxed) => {
                return Err(HandshakeError::new(
                    HandshakeFailure::BadSignature,
                    "the handshake signature does not verify with the certificate's key",
                ))
            }
            Ok(Err(e)) => return Err(HandshakeError::from_io(&e)),
            Ok(Ok(tls)) => tls,
        };
        let facts = facts(tls.get_ref().1, &recorder, names);
        Ok((tls, facts))
    }
}

impl TlsContext {
    /// Verify a chain read without a handshake (the first flight) with the
    /// same roots and classification as a handshake's; names aside. An
    /// unknown issuer stays `unknown_issuer` here: [`promote_self_signed`]
    /// with the chain's analysis tells a self-signed leaf.
    pub fn verify_offline(&self, chain: &[Vec<u8>], sni: &str) -> (Verification, Option<String>) {
        let Some((leaf, rest)) = chain.split_first() else {
            return (Verification::Other, Some("no certificate seen".into()));
        };
        let leaf = CertificateDer::from(leaf.as_slice());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        match self.webpki.verify_server_cert(
            &leaf,
            &intermediates,
            &server_name(sni),
            &[],
            UnixTime::now(),
        ) {
            Ok(_) => (Verification::Valid, None),
            Err(error) => classify(&error),
        }
    }
}

/// A chain of unknown issuer whose leaf signed itself is `self_signed`
/// (the chain's analysis checked the leaf's own signature).
pub fn promote_self_signed(
    verdict: (Verification, Option<String>),
    chain: &[CertInfo],
) -> (Verification, Option<String>) {
    match verdict {
        (Verification::UnknownIssuer, detail) if chain.first().is_some_and(|c| c.self_signed) => {
            (Verification::SelfSigned, detail)
        }
        other => other,
    }
}

/// Name match of `leaf` for every name (RFC 6125, via [`cert::name_matches`]).
pub fn name_match(leaf: Option<&[u8]>, names: &[String]) -> BTreeMap<String, bool> {
    names
        .iter()
        .map(|name| {
            let matches = leaf.is_some_and(|leaf| cert::name_matches(leaf, name));
            (name.clone(), matches)
        })
        .collect()
}

fn server_name(sni: &str) -> ServerName<'static> {
    ServerName::try_from(sni.to_string()).unwrap_or_else(|_| {
        // Not a DNS name: send no SNI-worthy name but keep the handshake going.
        ServerName::IpAddress(PkiIpAddr::from(std::net::Ipv4Addr::UNSPECIFIED))
    })
}

fn facts(conn: &rustls::ClientConnection, recorder: &Recorder, names: &[String]) -> TlsFacts {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "unknown".to_string(), |s| format!("{:?}", s.suite()));
    let group = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()));
    let certs: Vec<&[u8]> = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.as_ref())
        .collect();
    let chain = cert::analyse_chain(&certs);
    let name_match = name_match(certs.first().copied(), names);
    let ocsp = recorder
        .ocsp
        .lock()
        .ok()
        .and_then(|o| o.clone())
        .map(|response| cert::ocsp::read(&response, certs.first().copied(), certs.get(1).copied()));
    let signature_scheme = recorder
        .scheme
        .lock()
        .ok()
        .and_then(|s| *s)
        .map(|s| format!("{s:?}"));
    let (verification, verification_detail) = promote_self_signed(
        recorder
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.clone())
            .unwrap_or((Verification::Other, Some("no certificate seen".into()))),
        &chain,
    );
    let key_exchange = if version == "TLSv1.3" {
        KeyExchange::Tls13
    } else {
        KeyExchange::of_suite(&cipher)
    };
    TlsFacts {
        version,
        cipher,
        group,
        verification,
        verification_detail,
        name_match,
        chain,
        source: TlsSource::Handshake,
        key_exchange: Some(key_exchange),
        forward_secrecy: Some(key_exchange.forward_secret()),
        dh_bits: None,
        dh_group: None,
        signature_scheme,
        ocsp,
    }
}

/// Verifies like webpki, records the verdict, never rejects.
#[derive(Debug)]
struct Recorder {
    webpki: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Option<(Verification, Option<String>)>>,
    /// Set when the handshake signature failed even the legacy-tolerant check.
    bad_signature: AtomicBool,
    /// The scheme of the server's handshake signature.
    scheme: Mutex<Option<SignatureScheme>>,
    /// The stapled OCSP response, when one came (at most [`MAX_OCSP_BYTES`]).
    ocsp: Mutex<Option<Vec<u8>>>,
}

/// Most bytes of a stapled OCSP response kept (real ones are 1–3 KiB).
const MAX_OCSP_BYTES: usize = 16 * 1024;

impl Recorder {
    /// webpki's check, then ring's legacy-tolerant one (RSA-1024, SHA-1);
    /// only a signature failing both fails the handshake.
    fn judge_signature(
        &self,
        webpki: Result<HandshakeSignatureValid, rustls::Error>,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if let Ok(mut scheme) = self.scheme.lock() {
            *scheme = Some(dss.scheme);
        }
        if webpki.is_ok() {
            return webpki;
        }
        match tls_signature::legacy_check(message, cert, dss.scheme, dss.signature()) {
            tls_signature::Legacy::Invalid => {
                self.bad_signature.store(true, Ordering::Relaxed);
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::BadSignature,
                ))
            }
            tls_signature::Legacy::Valid | tls_signature::Legacy::Unchecked => {
                Ok(HandshakeSignatureValid::assertion())
            }
        }
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => (Verification::Valid, None),
            Err(error) => classify(&error),
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(verdict);
        }
        if !ocsp_response.is_empty() {
            if let Ok(mut ocsp) = self.ocsp.lock() {
                let kept = ocsp_response.get(..MAX_OCSP_BYTES).unwrap_or(ocsp_response);
                *ocsp = Some(kept.to_vec());
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // A weak key (RSA-1024) fails webpki's policy; an MTA goes on anyway.
        let webpki = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms);
        self.judge_signature(webpki, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let webpki = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        self.judge_signature(webpki, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self.algorithms.supported_schemes();
        for legacy in [
            SignatureScheme::RSA_PKCS1_SHA1,
            SignatureScheme::ECDSA_SHA1_Legacy,
        ] {
            if !schemes.contains(&legacy) {
                schemes.push(legacy);
            }
        }
        schemes
    }
}

/// Map webpki's verdict to the record's verification result. A name
/// mismatch is not a chain problem: names are recorded in `name_match`.
fn classify(error: &rustls::Error) -> (Verification, Option<String>) {
    let detail = Some(error.to_string());
    let verification = match error {
        rustls::Error::InvalidCertificate(cert_error) => match cert_error {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                return (Verification::Valid, None)
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                Verification::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Verification::NotYetValid
            }
            // Self-signed or not is told by the chain's analysis
            // ([`promote_self_signed`]), which checks the signature once.
            CertificateError::UnknownIssuer => Verification::UnknownIssuer,
            CertificateError::BadSignature => Verification::BadSignature,
            _ => Verification::Other,
        },
        _ => Verification::Other,
    };
    (verification, detail)
}

#[cfg(test)]
mod tests;
