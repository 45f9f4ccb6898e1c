//! Smoke tests of the lab's Postfix: every host greets, advertises (or not)
//! STARTTLS and completes TLS as the plan says. Uses a tiny SMTP client of
//! its own (not the probe engine); only ever connects to the plan's loopback
//! addresses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxscope_tests::plan::{self, Host};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ProtocolVersion};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(10);
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

/// One SMTP reply: its code and the text of each line.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) lines: Vec<String>,
}

impl Reply {
    pub(crate) fn has_keyword(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }
}

/// A plain-text SMTP session with a lab host.
pub(crate) struct Session {
    stream: BufReader<TcpStream>,
}

impl Session {
    /// Connect to `host:25`, from `source` when given.
    pub(crate) async fn connect(host: &Host, source: Option<IpAddr>) -> Self {
        assert!(host.ip.is_loopback(), "the lab is on loopback only");
        let addr = SocketAddr::new(host.ip, plan::SMTP_PORT);
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .expect("socket");
        if let Some(ip) = source {
            assert!(ip.is_loopback(), "vantages are on loopback only");
            socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
        }
        let stream = timeout(WAIT, socket.connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect to {addr} timed out"))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Read one (possibly multi-line) reply, bounded in size and time.
    pub(crate) async fn reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = timeout(WAIT, read_line(&mut self.stream, &mut raw))
                .await
                .expect("reply timed out");
            assert!(n > 0, "connection closed mid-reply: {lines:?}");
            let line = String::from_utf8_lossy(&raw).trim_end().to_string();
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            assert!(lines.len() <= MAX_LINES, "endless reply");
            if !more {
                return Reply { code, lines };
            }
        }
    }

    pub(crate) async fn command(&mut self, line: &str) -> Reply {
        let stream = self.stream.get_mut();
        timeout(WAIT, stream.write_all(format!("{line}\r\n").as_bytes()))
            .await
            .expect("write timed out")
            .expect("write");
        self.reply().await
    }

    /// Greeting, EHLO: returns both.
    pub(crate) async fn hello(&mut self) -> (Reply, Reply) {
        let greeting = self.reply().await;
        assert_eq!(greeting.code, 220, "greeting {greeting:?}");
        let ehlo = self.command("EHLO probe.lab.test").await;
        assert_eq!(ehlo.code, 250, "EHLO {ehlo:?}");
        (greeting, ehlo)
    }

    /// STARTTLS and a rustls handshake trusting only the lab CA.
    pub(crate) async fn starttls(
        mut self,
        host: &Host,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, std::io::Error> {
        let reply = self.command("STARTTLS").await;
        assert_eq!(reply.code, 220, "STARTTLS {reply:?}");
        let name = ServerName::try_from(host.name.to_string()).expect("server name");
        timeout(WAIT, lab_tls().connect(name, self.stream.into_inner()))
            .await
            .expect("TLS handshake timed out")
    }
}

async fn read_line(stream: &mut BufReader<TcpStream>, out: &mut Vec<u8>) -> usize {
    loop {
        let buf = stream.fill_buf().await.expect("read");
        if buf.is_empty() {
            return out.len();
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        out.extend_from_slice(&buf[..take]);
        stream.consume(take);
        assert!(out.len() <= MAX_LINE, "reply line too long");
        if done {
            return out.len();
        }
    }
}

/// A rustls client trusting the lab CA only.
fn lab_tls() -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(mxscope_tests::lab::certs().ca_der.clone())
        .expect("lab CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The certificate error a rustls handshake failed with.
fn cert_error(err: &std::io::Error) -> Option<CertificateError> {
    let inner = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(e) => Some(e.clone()),
        _ => None,
    }
}

fn postfix() {
    mxscope_tests::lab::postfix();
}

#[tokio::test]
async fn every_host_greets_with_its_name() {
    postfix();
    for host in plan::POSTFIX_HOSTS {
        let mut s = Session::connect(host, None).await;
        let greeting = s.reply().await;
        if host.name == plan::MX_REFUSE.name {
            assert_eq!(greeting.code, 554, "{}: {greeting:?}", host.name);
            continue;
        }
        assert_eq!(greeting.code, 220, "{}: {greeting:?}", host.name);
        assert!(
            greeting.lines[0].starts_with(host.name),
            "{}: {greeting:?}",
            host.name
        );
    }
}

#[tokio::test]
async fn starttls_is_advertised_where_the_plan_says() {
    postfix();
    for host in plan::POSTFIX_HOSTS {
        if host.name == plan::MX_REFUSE.name {
            continue;
        }
        let source = host.ip.is_ipv4().then_some(plan::VANTAGE_A.into());
        let mut s = Session::connect(host, source).await;
        let (_, ehlo) = s.hello().await;
        let expected = host.name != plan::MX_NOSTARTTLS.name;
        assert_eq!(
            ehlo.has_keyword("STARTTLS"),
            expected,
            "{}: {ehlo:?}",
            host.name
        );
    }
}

#[tokio::test]
async fn discard_hides_starttls_from_vantage_b_only() {
    postfix();
    let mut a = Session::connect(&plan::MX_DISCARD, Some(plan::VANTAGE_A.into())).await;
    assert!(a.hello().await.1.has_keyword("STARTTLS"));
    let mut b = Session::connect(&plan::MX_DISCARD, Some(plan::VANTAGE_B.into())).await;
    let (_, ehlo) = b.hello().await;
    assert!(!ehlo.has_keyword("STARTTLS"), "{ehlo:?}");
    assert!(ehlo.has_keyword("PIPELINING"), "{ehlo:?}");
}

#[tokio::test]
async fn tls454_answers_starttls_with_454() {
    postfix();
    let mut s = Session::connect(&plan::MX_TLS454, None).await;
    let (_, ehlo) = s.hello().await;
    assert!(ehlo.has_keyword("STARTTLS"), "{ehlo:?}");
    let reply = s.command("STARTTLS").await;
    assert_eq!(reply.code, 454, "{reply:?}");
}

#[tokio::test]
async fn valid_hosts_complete_tls_with_the_lab_ca() {
    postfix();
    for (host, version) in [
        (plan::MX_VALID, ProtocolVersion::TLSv1_3),
        (plan::MX_ECDSA, ProtocolVersion::TLSv1_3),
        (plan::MX_LEGACY, ProtocolVersion::TLSv1_3),
        (plan::MX_DISCARD, ProtocolVersion::TLSv1_3),
        (plan::MX_V6, ProtocolVersion::TLSv1_3),
        (plan::MX_BACKUP, ProtocolVersion::TLSv1_2),
    ] {
        let mut s = Session::connect(&host, None).await;
        s.hello().await;
        let tls = s
            .starttls(&host)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", host.name));
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.protocol_version(), Some(version), "{}", host.name);
    }
}

/// Whether a certificate error is the expected one.
type IsExpected = fn(&CertificateError) -> bool;

fn expired(e: &CertificateError) -> bool {
    matches!(
        e,
        CertificateError::Expired | CertificateError::ExpiredContext { .. }
    )
}

fn wrong_name(e: &CertificateError) -> bool {
    matches!(
        e,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    )
}

fn unknown_issuer(e: &CertificateError) -> bool {
    matches!(e, CertificateError::UnknownIssuer)
}

#[tokio::test]
async fn bad_certificates_fail_verification_as_planned() {
    postfix();
    let cases: [(Host, IsExpected); 3] = [
        (plan::MX_EXPIRED, expired),
        (plan::MX_MISMATCH, wrong_name),
        (plan::MX_SELFSIGNED, unknown_issuer),
    ];
    for (host, expected) in cases {
        let mut s = Session::connect(&host, None).await;
        s.hello().await;
        let Err(err) = s.starttls(&host).await else {
            panic!("{}: handshake succeeded", host.name);
        };
        let kind = cert_error(&err).unwrap_or_else(|| panic!("{}: {err}", host.name));
        assert!(expected(&kind), "{}: {kind:?}", host.name);
    }
}

#[test]
fn leaves_are_what_the_plan_says() {
    let certs = mxscope_tests::lab::certs();
    let text = |host: &Host| {
        let leaf = certs.leaf(host).expect("leaf");
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&leaf.cert)
            .output()
            .expect("openssl x509");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let small = text(&plan::MX_SMALLKEY);
    assert!(small.contains("Public-Key: (1024 bit)"), "{small}");
    assert!(small.contains("CA:FALSE"), "{small}");
    let ecdsa = text(&plan::MX_ECDSA);
    assert!(
        ecdsa.contains("prime256v1") || ecdsa.contains("P-256"),
        "{ecdsa}"
    );
    let mismatch = text(&plan::MX_MISMATCH);
    assert!(mismatch.contains("DNS:other-name.lab.test"), "{mismatch}");
    assert!(!mismatch.contains("DNS:mx-mismatch"), "{mismatch}");
}

/// `openssl s_client -starttls smtp` against `host` with extra arguments:
/// (handshake succeeded, output).
pub(crate) async fn s_client(host: &Host, args: &[&str]) -> (bool, String) {
    assert!(host.ip.is_loopback(), "the lab is on loopback only");
    let connect = SocketAddr::new(host.ip, plan::SMTP_PORT).to_string();
    let child = tokio::process::Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-connect", &connect])
        .args(["-servername", host.name])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_client");
    let out = timeout(WAIT, child.wait_with_output())
        .await
        .expect("openssl s_client timed out")
        .expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn only_legacy_speaks_tls_1_0_and_1_1() {
    postfix();
    for version in ["-tls1", "-tls1_1"] {
        let args = [version, "-cipher", "DEFAULT:@SECLEVEL=0"];
        let (ok, out) = s_client(&plan::MX_LEGACY, &args).await;
        assert!(ok, "legacy {version}: {out}");
        for host in [plan::MX_VALID, plan::MX_BACKUP, plan::MX_SMALLKEY] {
            let (ok, out) = s_client(&host, &args).await;
            assert!(!ok, "{} {version}: {out}", host.name);
        }
    }
    let (ok, out) = s_client(&plan::MX_BACKUP, &["-tls1_3"]).await;
    assert!(!ok, "backup -tls1_3: {out}");
}

#[tokio::test]
async fn smallkey_serves_rsa_1024() {
    postfix();
    let (ok, out) = s_client(&plan::MX_SMALLKEY, &["-cipher", "DEFAULT:@SECLEVEL=0"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("Server public key is 1024 bit"), "{out}");
}
