//! The legacy-version probe (`mxscope_worker::tls::legacy`) against the scripted
//! SSLv3 server (`mxscope_tests::scripted::sslv3`) on 127.0.0.1. Needs no root and no
//! lab packages: the server is a tokio task on an ephemeral port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::VersionSupport;
use mxscope_worker::tls::legacy::{test_version, LegacyVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const SNI: &str = "mx-ssl3.lab.test";
const WAIT: Duration = Duration::from_secs(5);

/// The scripted SSLv3 server on `127.0.0.1:0`, stopped on drop.
struct Ssl3Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Ssl3Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        assert!(addr.ip().is_loopback());
        let task = tokio::spawn(mxscope_tests::scripted::sslv3::serve(listener));
        Self { addr, task }
    }

    async fn connect(&self) -> TcpStream {
        timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .expect("connect in time")
            .expect("connect")
    }

    /// A session that has just received STARTTLS's 220.
    async fn after_starttls(&self) -> TcpStream {
        let mut stream = self.connect().await;
        let greeting = read_reply(&mut stream).await;
        assert!(greeting.starts_with("220 mx-ssl3.lab.test"), "{greeting:?}");
        let ehlo = command(&mut stream, "EHLO probe.example").await;
        assert!(
            ehlo.starts_with("250-") && ehlo.contains("\r\n250 STARTTLS\r\n"),
            "{ehlo:?}"
        );
        let starttls = command(&mut stream, "STARTTLS").await;
        assert!(starttls.starts_with("220 "), "{starttls:?}");
        stream
    }
}

impl Drop for Ssl3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read one whole SMTP reply (bounded, with a deadline).
async fn read_reply(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("reply in time")
            .expect("read reply");
        assert!(n > 0, "server closed mid-reply after {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        assert!(buf.len() < 4096, "reply too long");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let last_line = text
            .trim_end_matches("\r\n")
            .rsplit("\r\n")
            .next()
            .unwrap_or("");
        if text.ends_with("\r\n") && last_line.as_bytes().get(3) == Some(&b' ') {
            return text;
        }
    }
}

async fn command(stream: &mut TcpStream, line: &str) -> String {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .expect("send command");
    read_reply(stream).await
}

#[tokio::test]
async fn ssl3_is_supported() {
    let server = Ssl3Server::start().await;
    let mut stream = server.after_starttls().await;
    let result = test_version(&mut stream, LegacyVersion::Ssl3, Some(SNI), WAIT).await;
    assert_eq!(
        result,
        (
            VersionSupport::Supported,
            Some("TLS_RSA_WITH_AES_128_CBC_SHA".into())
        )
    );
}

#[tokio::test]
async fn tls1_0_and_tls1_1_are_not_supported() {
    let server = Ssl3Server::start().await;
    for version in [LegacyVersion::Tls1_0, LegacyVersion::Tls1_1] {
        for sni in [Some(SNI), None] {
            let mut stream = server.after_starttls().await;
            let result = test_version(&mut stream, version, sni, WAIT).await;
            assert_eq!(
                result,
                (
                    VersionSupport::NotSupported,
                    Some("alert protocol_version".into())
                ),
                "{version:?} sni={sni:?}"
            );
        }
    }
}

#[tokio::test]
async fn sessions_run_concurrently() {
    let server = Arc::new(Ssl3Server::start().await);
    // Hold a few idle sessions open: the probes must not wait behind them.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(server.after_starttls().await);
    }
    let mut probes = tokio::task::JoinSet::new();
    for round in 0..3 {
        for version in LegacyVersion::ALL {
            let server = Arc::clone(&server);
            probes.spawn(async move {
                let mut stream = server.after_starttls().await;
                let result = test_version(&mut stream, version, Some(SNI), WAIT).await;
                (round, version, result.0)
            });
        }
    }
    while let Some(joined) = probes.join_next().await {
        let (round, version, support) = joined.expect("probe task");
        let expected = match version {
            LegacyVersion::Ssl3 => VersionSupport::Supported,
            LegacyVersion::Tls1_0 | LegacyVersion::Tls1_1 | LegacyVersion::Tls1_2 => {
                VersionSupport::NotSupported
            }
        };
        assert_eq!(support, expected, "round {round} {version:?}");
    }
    drop(idle);
}

#[tokio::test]
async fn modern_rustls_hello_gets_protocol_version() {
    let server = Ssl3Server::start().await;
    let stream = server.after_starttls().await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from(SNI).expect("valid name");
    let err = timeout(WAIT, connector.connect(name, stream))
        .await
        .expect("handshake ends in time")
        .expect_err("no TLS 1.2/1.3 here");
    let tls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert_eq!(
        tls_err,
        Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion
        )),
        "{err}"
    );
}

#[tokio::test]
async fn plain_smtp_dialogue() {
    let server = Ssl3Server::start().await;
    let mut stream = server.connect().await;
    assert!(read_reply(&mut stream).await.starts_with("220 "));
    assert_eq!(
        command(&mut stream, "HELO probe.example").await,
        "250 mx-ssl3.lab.test\r\n"
    );
    assert!(command(&mut stream, "VRFY root").await.starts_with("502 "));
    assert!(command(&mut stream, "QUIT").await.starts_with("221 "));
    let mut rest = Vec::new();
    let n = timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("close in time")
        .expect("read to end");
    assert_eq!(n, 0, "nothing after 221");
}

#[tokio::test]
async fn garbage_after_starttls_gets_an_alert() {
    let server = Ssl3Server::start().await;
    let mut stream = server.after_starttls().await;
    stream
        .write_all(b"EHLO plaintext-after-starttls\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read answer");
    assert_eq!(answer, [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70]);
}

/// The driver against peers that misbehave at the TCP level.
#[tokio::test]
async fn close_and_silence() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let peer = tokio::spawn(async move {
        // First connection: read the hello, then close without a word.
        let (mut first, _) = listener.accept().await.expect("accept");
        let mut hello = [0u8; 5];
        first.read_exact(&mut hello).await.expect("hello header");
        drop(first);
        // Second: stay silent until the client gives up.
        let (mut second, _) = listener.accept().await.expect("accept");
        let mut sink = Vec::new();
        let _ = second.read_to_end(&mut sink).await;
    });

    let mut first = TcpStream::connect(addr).await.expect("connect");
    let closed = test_version(&mut first, LegacyVersion::Tls1_0, Some(SNI), WAIT).await;
    assert_eq!(closed.0, VersionSupport::NotSupported, "{closed:?}");
    assert!(
        matches!(
            closed.1.as_deref(),
            Some("connection closed" | "connection reset")
        ),
        "{closed:?}"
    );

    let mut second = TcpStream::connect(addr).await.expect("connect");
    let silent = test_version(
        &mut second,
        LegacyVersion::Ssl3,
        None,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(silent, (VersionSupport::Error, Some("timeout".into())));
    drop(second);
    timeout(WAIT, peer)
        .await
        .expect("peer ends")
        .expect("peer task");
}
