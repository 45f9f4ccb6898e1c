//! The HTTPS policy fetch (RFC 8461 §3.3), as a careful sender does it:
//! `mta-sts.<domain>` resolved through the worker's resolver (A/AAAA, never
//! the system resolver), a TCP connection to each address in turn, TLS with
//! SNI `mta-sts.<domain>` and full certificate validation (the trust store,
//! and the name), one HTTP/1.1 `GET`, status 200 only (a redirect is a
//! failure), `text/plain`, at most [`MAX_POLICY_BYTES`] of body, and every
//! step under one deadline.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use mxscope_common::record::security_policy::{MtaSts, Policy};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{evaluate, parse_policy, select_sts_txt, MxTls, PolicyError, TxtLookup};
use super::{DnsFailure, PolicyDns, MAX_POLICY_BYTES, POLICY_PATH};
use crate::config::is_public;
use crate::dns::{DnsConfig, DnsSetupError};
use crate::tls::roots;

/// Limits of one policy fetch.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// HTTPS port (443; configurable for labs).
    pub port: u16,
    /// Timeout of one TCP connect.
    pub connect_timeout: Duration,
    /// Deadline of the whole fetch (DNS, connects, TLS, request, body).
    pub total_timeout: Duration,
    /// Largest body accepted.
    pub max_body: usize,
    /// Connect to loopback and other non-public addresses (labs only).
    pub allow_private: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            port: 443,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_body: MAX_POLICY_BYTES,
            allow_private: false,
        }
    }
}

/// Errors building a [`PolicyFetcher`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchSetupError {
    /// The resolver could not be built; check `--resolver`.
    #[error(transparent)]
    Dns(#[from] DnsSetupError),
    /// The CA file could not be read or holds no certificate; check the path.
    #[error("reading CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    /// rustls refused the configuration (a bug: report it).
    #[error("building the TLS configuration: {0}")]
    Tls(String),
}

/// Why no policy came out of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// `mta-sts.<domain>` has no address (NXDOMAIN / NODATA): nobody serves a policy.
    #[error("policy host {host} has no address ({reason})")]
    NoPolicyHost { host: String, reason: String },
    /// The policy host's address lookup failed (SERVFAIL, timeout).
    #[error("resolving policy host {host}: {reason}")]
    Dns { host: String, reason: String },
    /// Every address refused, was unreachable or timed out at connect.
    #[error("policy host {host} does not answer on port {port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    /// Only non-public addresses, and `allow_private` is off.
    #[error("policy host {host} resolves only to non-public addresses")]
    PrivateAddress { host: String },
    /// The TLS handshake failed (including an untrusted or mismatched certificate).
    #[error("tls with {host}: {reason}")]
    Tls { host: String, reason: String },
    /// The HTTP exchange failed (malformed response, reset).
    #[error("http: {0}")]
    Http(String),
    /// A 3xx answer: RFC 8461 §3.3 forbids following redirects.
    #[error("redirect (HTTP {status}) to {location:?}: redirects are not followed")]
    Redirect { status: u16, location: String },
    /// Any status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is not `text/plain`.
    #[error("content type {0:?} is not text/plain")]
    ContentType(String),
    /// The body exceeds the limit.
    #[error("policy larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The body is not a valid policy.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// The whole fetch exceeded its deadline.
    #[error("fetch exceeded its deadline of {0:?}")]
    Timeout(Duration),
}

impl FetchError {
    /// Nobody serves a policy at all: no address, or no TCP answer on the
    /// port. Such a domain is `txt_without_policy`; every other failure is
    /// `policy_fetch_failed`.
    pub fn policy_host_absent(&self) -> bool {
        matches!(self, Self::NoPolicyHost { .. } | Self::Connect { .. })
    }
}

/// Fetches MTA-STS policies and looks up the TXT records.
#[derive(Debug, Clone)]
pub struct PolicyFetcher {
    dns: PolicyDns,
    tls: Arc<ClientConfig>,
    config: FetchConfig,
}

impl PolicyFetcher {
    /// Trust Mozilla's roots, or only the certificates of `ca_file` (PEM), as
    /// the MX probe does (`--ca-file`).
    pub fn new(
        dns: &DnsConfig,
        ca_file: Option<&Path>,
        config: FetchConfig,
    ) -> Result<Self, FetchSetupError> {
        match ca_file {
            None => Self::with_roots(dns, roots::mozilla(), config),
            Some(path) => {
                let roots = roots::from_file(path).map_err(|reason| FetchSetupError::CaFile {
                    path: path.display().to_string(),
                    reason,
                })?;
                Self::with_roots(dns, roots, config)
            }
        }
    }

    /// Trust only the certificates of a PEM bundle (a scan's `ca_pem`).
    pub fn from_pem(
        dns: &DnsConfig,
        pem: &[u8],
        config: FetchConfig,
    ) -> Result<Self, FetchSetupError> {
        let roots = roots::from_pem(pem).map_err(|reason| FetchSetupError::CaFile {
            path: "(PEM bundle)".to_string(),
            reason,
        })?;
        Self::with_roots(dns, roots, config)
    }

    fn with_roots(
        dns: &DnsConfig,
        roots: RootCertStore,
        config: FetchConfig,
    ) -> Result<Self, FetchSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchSetupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            dns: PolicyDns::new(dns)?,
            tls: Arc::new(tls),
            config,
        })
    }

    /// The resolver (for the TLS-RPT lookup).
    pub fn dns(&self) -> &PolicyDns {
        &self.dns
    }

    /// The `_mta-sts.<domain>` TXT lookup, after RFC 8461 §3.1's selection.
    pub async fn sts_txt(&self, domain: &str) -> TxtLookup {
        match self.dns.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => select_sts_txt(&records),
            Err(e) => TxtLookup::DnsError(format!("_mta-sts.{domain} TXT: {e}")),
        }
    }

    /// The whole check: TXT, then (when valid) the policy, then
    /// [`evaluate`]. 1 TXT query without a record, 3 queries and one HTTPS
    /// fetch with one.
    pub async fn check(&self, domain: &str, mx_names: &[String], per_mx_tls: &[MxTls]) -> MtaSts {
        let txt = self.sts_txt(domain).await;
        let fetched = match txt {
            TxtLookup::Found(_) => Some(self.fetch_policy(domain).await),
            _ => None,
        };
        evaluate(&txt, fetched.as_ref(), mx_names, per_mx_tls)
    }

    /// Fetch and parse `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub async fn fetch_policy(&self, domain: &str) -> Result<Policy, FetchError> {
        let deadline = self.config.total_timeout;
        match tokio::time::timeout(deadline, self.fetch_inner(domain)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(deadline)),
        }
    }

    async fn fetch_inner(&self, domain: &str) -> Result<Policy, FetchError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let host = format!("mta-sts.{domain}");
        let addresses =
            self.dns
                .addresses(&host)
                .await
                .map_err(|e: DnsFailure| match e.is_negative() {
                    true => FetchError::NoPolicyHost {
                        host: host.clone(),
                        reason: e.message,
                    },
                    false => FetchError::Dns {
                        host: host.clone(),
                        reason: e.message,
                    },
                })?;
        let addresses: Vec<IpAddr> = addresses
            .into_iter()
            .filter(|ip| self.config.allow_private || is_public(*ip))
            .collect();
        if addresses.is_empty() {
            return Err(FetchError::PrivateAddress { host });
        }
        let tcp = self.connect(&host, &addresses).await?;
        let server_name = ServerName::try_from(host.clone()).map_err(|e| FetchError::Tls {
            host: host.clone(),
            reason: format!("not a valid server name: {e}"),
        })?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| FetchError::Tls {
                host: host.clone(),
                reason: e.to_string(),
            })?;
        let body = self.get(&host, tls).await?;
        Ok(parse_policy(&body)?)
    }

    /// Connect to the first address that accepts.
    async fn connect(&self, host: &str, addresses: &[IpAddr]) -> Result<TcpStream, FetchError> {
        let mut reasons = Vec::new();
        for ip in addresses {
            let addr = SocketAddr::new(*ip, self.config.port);
            match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr)).await
            {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => reasons.push(format!("{addr}: {e}")),
                Err(_) => reasons.push(format!("{addr}: connect timed out")),
            }
        }
        Err(FetchError::Connect {
            host: host.to_string(),
            port: self.config.port,
            reason: reasons.join(", "),
        })
    }

    /// One `GET` of the policy path over `io`; the bounded body of a 200.
    async fn get<S>(&self, host: &str, io: S) -> Result<Bytes, FetchError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let http_error = |e: hyper::Error| FetchError::Http(e.to_string());
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
                .await
                .map_err(http_error)?;
        // The connection task ends with the response or when dropped here.
        let driver = AbortOnDrop(tokio::spawn(connection));
        let request = http::Request::get(POLICY_PATH)
            .header(HOST, host)
            .header(USER_AGENT, concat!("mxscope/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "text/plain")
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status();
        if status.is_redirection() {
            let location = header_text(response.headers().get(LOCATION));
            return Err(FetchError::Redirect {
                status: status.as_u16(),
                location,
            });
        }
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let content_type = header_text(response.headers().get(CONTENT_TYPE));
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("text/plain") {
            return Err(FetchError::ContentType(content_type));
        }
        let limit = self.config.max_body;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(FetchError::TooLarge { limit });
        }
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
                Some(_) => FetchError::TooLarge { limit },
                None => FetchError::Http(e.to_string()),
            })?
            .to_bytes();
        drop(driver);
        Ok(body)
    }
}

/// A header's value as text (lossy), empty when absent; at most 200 chars.
fn header_text(value: Option<&http::HeaderValue>) -> String {
    value
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(200)
                .collect()
        })
        .unwrap_or_default()
}

/// Aborts the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
