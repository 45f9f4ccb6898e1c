//! Hostile and scripted SMTP servers for the cases no real MTA shows:
//! endless replies, huge lines, trickling bytes, response injection after
//! STARTTLS, invalid UTF-8, a server that never greets, and the scripted
//! SSLv3 server. They run on a runtime of their own, so they outlive any one
//! test's runtime; every loop they run is bounded in bytes and time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::certs::LabCerts;
use crate::plan::{self, Host};

/// Longest any fake keeps a connection.
const MAX_CONNECTION: Duration = Duration::from_secs(300);
/// Most bytes any fake writes to one connection.
const MAX_WRITE: usize = 8 * 1024 * 1024;

/// SMTP sessions per client address, seen by the counting server.
pub type SessionCounts = Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>;

/// The running fakes (a runtime on a thread of its own, for the process's life).
#[derive(Debug)]
pub struct Fakes {
    _thread: std::thread::JoinHandle<()>,
    counts: SessionCounts,
    toggle: Arc<AtomicBool>,
}

impl Fakes {
    /// Bind every fake of the plan on its address and start serving. Safe to
    /// call from inside another runtime (a `#[tokio::test]`).
    pub fn start(certs: &LabCerts) -> anyhow::Result<Self> {
        let (chain, key) = certs.issue(plan::MX_INJECT.name)?;
        let acceptor = tls_acceptor(&chain, &key)?;
        let counts = SessionCounts::default();
        let toggle = Arc::new(AtomicBool::new(true));
        let server_toggle = toggle.clone();
        let (toggle_chain, toggle_key) = certs.issue(plan::MX_TOGGLE.name)?;
        let toggle_acceptor = tls_acceptor(&toggle_chain, &toggle_key)?;
        let server_counts = counts.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("lab-fakes".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = bind_all(acceptor, server_counts).await;
                    let started = match started {
                        Ok(()) => {
                            serve(plan::MX_TOGGLE, move |s| {
                                toggled(s, toggle_acceptor.clone(), server_toggle.clone())
                            })
                            .await
                        }
                        Err(e) => Err(e),
                    };
                    let _ = ready_tx.send(started);
                    std::future::pending::<()>().await;
                });
            })
            .context("spawning the fakes' thread")?;
        ready_rx
            .recv()
            .context("the fakes' thread ended before binding")??;
        Ok(Self {
            _thread: thread,
            counts,
            toggle,
        })
    }

    /// Switch STARTTLS of [`plan::MX_TOGGLE`] on or off (it starts on).
    pub fn set_toggle_starttls(&self, on: bool) {
        self.toggle.store(on, Ordering::SeqCst);
    }

    /// SMTP sessions the counting server ([`plan::MX_COUNT`]) had from `client`.
    pub fn sessions_from(&self, client: IpAddr) -> usize {
        self.counts
            .lock()
            .map(|c| c.get(&client).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

async fn bind_all(acceptor: TlsAcceptor, counts: SessionCounts) -> anyhow::Result<()> {
    serve(plan::MX_COUNT, move |s| counting(s, counts.clone())).await?;
    serve(plan::MX_SILENT, silent).await?;
    serve(plan::MX_ENDLESS, endless).await?;
    serve(plan::MX_LONGLINE, long_line).await?;
    serve(plan::MX_TRICKLE, trickle).await?;
    serve(plan::MX_BADUTF8, bad_utf8).await?;
    serve(plan::MX_INJECT, move |s| inject(s, acceptor.clone())).await?;
    let ssl3 = bind(plan::MX_SSL3).await?;
    tokio::spawn(crate::sslv3::serve(ssl3));
    Ok(())
}

async fn bind(host: Host) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(host.ip, plan::SMTP_PORT);
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding fake {} on {addr}", host.name))
}

/// Accept forever on `host`, handling each connection with `handler`.
async fn serve<F, Fut>(host: Host, handler: F) -> anyhow::Result<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = bind(host).await?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let session = handler(stream);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(MAX_CONNECTION, session).await;
            });
        }
    });
    Ok(())
}

fn tls_acceptor(chain_pem: &str, key_pem: &str) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the fake's certificate chain")?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("parsing the fake's key")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Read one command line (bounded), uppercased verb first; `None` at EOF.
async fn command<S: AsyncRead + Unpin>(
    reader: &mut BufReader<S>,
) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(1024)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&line).trim().to_ascii_uppercase(),
    ))
}

/// Accepts, never greets, keeps the connection open.
async fn silent(mut stream: TcpStream) -> std::io::Result<()> {
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

/// `220-` continuation lines that never end.
async fn endless(mut stream: TcpStream) -> std::io::Result<()> {
    let line = b"220-mx-endless.lab.test this reply never ends\r\n";
    let mut written = 0;
    while written < MAX_WRITE {
        stream.write_all(line).await?;
        written += line.len();
    }
    Ok(())
}

/// A greeting line of 1 MiB.
async fn long_line(mut stream: TcpStream) -> std::io::Result<()> {
    stream.write_all(b"220 ").await?;
    let chunk = [b'a'; 64 * 1024];
    for _ in 0..16 {
        stream.write_all(&chunk).await?;
    }
    stream.write_all(b"\r\n").await?;
    silent(stream).await
}

/// A greeting at one byte per second.
async fn trickle(mut stream: TcpStream) -> std::io::Result<()> {
    for byte in b"220-mx-trickle.lab.test slow\r\n".iter().cycle().take(600) {
        stream.write_all(&[*byte]).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// A plain SMTP server (no STARTTLS) that counts sessions per client address.
async fn counting(stream: TcpStream, counts: SessionCounts) -> std::io::Result<()> {
    if let (Ok(peer), Ok(mut counts)) = (stream.peer_addr(), counts.lock()) {
        *counts.entry(peer.ip()).or_default() += 1;
    }
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"220 mx-count.lab.test ESMTP\r\n")
        .await?;
    while let Some(cmd) = command(&mut reader).await? {
        if cmd.starts_with("EHLO") {
            reader
                .get_mut()
                .write_all(b"250-mx-count.lab.test\r\n250 8BITMIME\r\n")
                .await?;
        } else if cmd.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            reader.get_mut().write_all(b"502 no\r\n").await?;
        }
    }
    Ok(())
}

/// Replies with bytes that are not UTF-8, and no STARTTLS.
async fn bad_utf8(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"220 mx-badutf8.lab.test \xff\xfe ESMTP\r\n")
        .await?;
    while let Some(cmd) = command(&mut reader).await? {
        let reply: &[u8] = if cmd.starts_with("EHLO") {
            b"250-mx-badutf8.lab.test \xc3\x28\r\n250 8BITMIME\r\n"
        } else if cmd.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        reader.get_mut().write_all(reply).await?;
    }
    Ok(())
}

/// STARTTLS advertised (with a real TLS session) while `on`, absent otherwise.
async fn toggled(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    on: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let starttls = on.load(Ordering::SeqCst);
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"220 mx-toggle.lab.test ESMTP\r\n")
        .await?;
    while let Some(cmd) = command(&mut reader).await? {
        if cmd.starts_with("EHLO") && starttls {
            reader
                .get_mut()
                .write_all(b"250-mx-toggle.lab.test\r\n250 STARTTLS\r\n")
                .await?;
        } else if cmd.starts_with("EHLO") {
            reader
                .get_mut()
                .write_all(b"250-mx-toggle.lab.test\r\n250 8BITMIME\r\n")
                .await?;
        } else if cmd == "STARTTLS" && starttls {
            reader.get_mut().write_all(b"220 ready\r\n").await?;
            let tls = acceptor.accept(reader.into_inner()).await?;
            return smtp_after_tls(tls).await;
        } else if cmd.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            reader.get_mut().write_all(b"502 no\r\n").await?;
        }
    }
    Ok(())
}

/// STARTTLS whose 220 is followed, in the same write, by an injected reply;
/// then a real TLS session.
async fn inject(stream: TcpStream, acceptor: TlsAcceptor) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"220 mx-inject.lab.test ESMTP\r\n")
        .await?;
    while let Some(cmd) = command(&mut reader).await? {
        if cmd.starts_with("EHLO") {
            reader
                .get_mut()
                .write_all(b"250-mx-inject.lab.test\r\n250 STARTTLS\r\n")
                .await?;
        } else if cmd == "STARTTLS" {
            reader
                .get_mut()
                .write_all(b"220 ready\r\n250-INJECTED before TLS\r\n250 AUTH PLAIN\r\n")
                .await?;
            let stream = reader.into_inner();
            let tls = acceptor.accept(stream).await?;
            return smtp_after_tls(tls).await;
        } else if cmd.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            reader.get_mut().write_all(b"502 no\r\n").await?;
        }
    }
    Ok(())
}

async fn smtp_after_tls<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(cmd) = command(&mut reader).await? {
        if cmd.starts_with("EHLO") {
            reader
                .get_mut()
                .write_all(b"250-mx-inject.lab.test\r\n250 PIPELINING\r\n")
                .await?;
        } else if cmd.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await?;
            reader.get_mut().shutdown().await?;
            return Ok(());
        } else {
            reader.get_mut().write_all(b"502 no\r\n").await?;
        }
    }
    Ok(())
}
