//! The client side of the coordinator's gRPC, for both command lines and
//! the worker: one endpoint set-up (scheme, TLS, timeouts, keep-alive), one
//! bearer-token interceptor and one message limit, which the server
//! (`coordinator::grpc::server`) uses too.

use std::str::FromStr;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Most bytes in one gRPC message, either way, on the server and every
/// client (result batches are cut far below it, submissions are chunked).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The metadata key of the token.
pub const AUTHORIZATION: &str = "authorization";
/// What precedes the token in [`AUTHORIZATION`].
pub const BEARER_PREFIX: &str = "Bearer ";
/// Connecting to the coordinator.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection to the coordinator cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The URL does not parse or has the wrong scheme; pass `http(s)://HOST:PORT`.
    #[error("coordinator URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// The coordinator CA or client certificate cannot be used; check the PEM files.
    #[error("coordinator TLS: {0}")]
    Tls(String),
    /// The token holds characters a header cannot carry; check the token file.
    #[error("the token is not a valid header value (printable ASCII only)")]
    Token,
}

/// Sends `authorization: Bearer <token>` with every call (nothing without
/// a token). The coordinator's check is `coordinator::grpc::auth`.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// The interceptor for `token` (trimmed).
    pub fn new(token: Option<&str>) -> Result<Self, ClientConfigError> {
        let value = token
            .map(|token| {
                MetadataValue::from_str(&format!("{BEARER_PREFIX}{}", token.trim()))
                    .map_err(|_| ClientConfigError::Token)
            })
            .transpose()?;
        Ok(Self(value))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

/// TLS settings of a connection to the coordinator (PEM).
#[derive(Clone, Default)]
pub struct ClientTls {
    /// Trust anchors for an https:// coordinator; Mozilla's roots when `None`.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key, for a coordinator that requires mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca_pem.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// TLS of a client of an `https://` coordinator: trust `ca_pem` when given
/// (and nothing else), otherwise Mozilla's public roots (webpki-roots);
/// present `identity` (certificate chain, key) for mutual TLS.
pub fn client_tls(ca_pem: Option<&[u8]>, identity: Option<(&[u8], &[u8])>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new();
    let tls = match ca_pem {
        Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
        None => tls.trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    };
    match identity {
        Some((cert, key)) => tls.identity(Identity::from_pem(cert, key)),
        None => tls,
    }
}

/// The endpoint of the coordinator at `url`: `http://` (no TLS options
/// allowed) or `https://` with `tls`; `call_timeout` bounds every call
/// (`None` for clients that stream for long, such as exports).
pub fn endpoint(
    url: &str,
    tls: &ClientTls,
    call_timeout: Option<Duration>,
) -> Result<Endpoint, ClientConfigError> {
    let bad_url = |reason: String| ClientConfigError::Url {
        url: url.to_string(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| bad_url(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    if let Some(timeout) = call_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    match endpoint.uri().scheme_str() {
        Some("https") => {
            let identity = tls
                .identity
                .as_ref()
                .map(|(cert, key)| (cert.as_slice(), key.as_slice()));
            endpoint
                .tls_config(client_tls(tls.ca_pem.as_deref(), identity))
                .map_err(|e| ClientConfigError::Tls(e.to_string()))
        }
        Some("http") if tls.ca_pem.is_some() || tls.identity.is_some() => Err(bad_url(
            "TLS options given for a plain http:// coordinator; use https://".into(),
        )),
        Some("http") => Ok(endpoint),
        _ => Err(bad_url("the scheme must be http:// or https://".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a CA file the public roots are trusted; with one, only it.
    #[test]
    fn public_roots_unless_a_ca_file_is_given() {
        let anchors = |tls: ClientTlsConfig| format!("{tls:?}").matches("TrustAnchor {").count();
        assert_eq!(
            anchors(client_tls(None, None)),
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        let pem = b"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
        assert_eq!(anchors(client_tls(Some(pem), None)), 0);
    }

    #[test]
    fn endpoints_are_checked() {
        let plain = ClientTls::default();
        assert!(matches!(
            endpoint("ftp://x", &plain, None),
            Err(ClientConfigError::Url { .. })
        ));
        assert!(matches!(
            endpoint("not a url", &plain, None),
            Err(ClientConfigError::Url { .. })
        ));
        assert!(endpoint("http://127.0.0.1:1", &plain, None).is_ok());
        let with_ca = ClientTls {
            ca_pem: Some(b"pem".to_vec()),
            identity: None,
        };
        let error = endpoint("http://127.0.0.1:1", &with_ca, None).unwrap_err();
        assert!(error.to_string().contains("use https://"), "{error}");
    }

    #[test]
    fn the_bearer_goes_on_every_call() {
        let mut bearer = Bearer::new(Some(" s3cret\n")).unwrap();
        let request = bearer.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get(AUTHORIZATION).unwrap(),
            "Bearer s3cret"
        );
        let mut none = Bearer::new(None).unwrap();
        assert!(none
            .call(Request::new(()))
            .unwrap()
            .metadata()
            .get(AUTHORIZATION)
            .is_none());
        assert_eq!(
            Bearer::new(Some("line\nbreak")).unwrap_err(),
            ClientConfigError::Token
        );
    }
}
