//! The performance lab's SMTP server: tokio + tokio-rustls, one listener
//! bound explicitly per address, each address in one [`Mode`] (a fast
//! STARTTLS server, a tarpit that accepts and never greets, or a `421`),
//! certificates RSA-2048 or ECDSA P-256 made at start ([`PerfCerts`]).
//!
//! Every session is bounded: [`MAX_LINE`] per command line, [`MAX_COMMANDS`]
//! per session, [`COMMAND_WAIT`] per read, [`TARPIT_HOLD`] for a tarpit.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::scripted::scripts::{self, Leaf};

/// One session seen by a counting server: the address it reached, the
/// client's address, and when.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub target: IpAddr,
    pub client: IpAddr,
    pub at: Instant,
}

/// Longest command line read; a longer one ends the session.
pub const MAX_LINE: usize = 1024;
/// Most commands per session (before and inside TLS together).
pub const MAX_COMMANDS: usize = 16;
/// Longest wait for one command or the TLS handshake.
pub const COMMAND_WAIT: Duration = Duration::from_secs(30);
/// Longest a tarpit keeps a connection.
pub const TARPIT_HOLD: Duration = Duration::from_secs(600);
/// Most sessions whose start is kept in [`Stats::seen`].
pub const MAX_SEEN: usize = 200_000;

/// What one address does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 220 (after the greeting delay), EHLO with STARTTLS, TLS with this
    /// certificate, EHLO, QUIT.
    Fast(CertKind),
    /// Accept and never greet.
    Tarpit,
    /// `421` and close.
    Refuse,
}

/// Which certificate a fast address presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Rsa2048,
    EcdsaP256,
}

/// The population of the lab: which address does what. Tarpits and `421`s
/// are spread evenly over the addresses (every 1000/permille-th one), fast
/// addresses alternate RSA (even index) and ECDSA (odd index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Population {
    pub tarpit_permille: u32,
    pub refuse_permille: u32,
}

impl Population {
    /// The mode of address `i`.
    pub fn mode(&self, i: usize) -> Mode {
        // Evenly spread: address i is a tarpit when the running share of
        // tarpits among 0..=i steps up at i; refusals step half a period
        // later, so the two rarely meet.
        let step = |permille: u32, i: usize, offset: usize| {
            let p = permille.min(1000) as usize;
            ((i + 1) * p + offset) / 1000 != (i * p + offset) / 1000
        };
        if step(self.tarpit_permille, i, 0) {
            Mode::Tarpit
        } else if step(self.refuse_permille, i, 500) {
            Mode::Refuse
        } else if i % 2 == 0 {
            Mode::Fast(CertKind::Rsa2048)
        } else {
            Mode::Fast(CertKind::EcdsaP256)
        }
    }
}

/// The lab's two certificates (self-signed, for `mx.perf.test` and
/// `*.perf.test`), made at start.
#[derive(Debug, Clone)]
pub struct PerfCerts {
    pub rsa: Leaf,
    pub ecdsa: Leaf,
}

impl PerfCerts {
    /// Generate both (RSA by `openssl genpkey`, which rcgen cannot do).
    pub fn generate() -> anyhow::Result<Self> {
        let rsa_key = crate::certs::genrsa_pem(2048)?;
        let rsa = self_signed(KeyPair::from_pem(&rsa_key).context("loading the RSA key")?)?;
        let ecdsa = self_signed(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)?;
        Ok(Self { rsa, ecdsa })
    }

    /// Write them as `rsa.pem`, `rsa.key`, `ecdsa.pem`, `ecdsa.key` under `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, leaf) in [("rsa", &self.rsa), ("ecdsa", &self.ecdsa)] {
            std::fs::write(dir.join(format!("{name}.pem")), &leaf.chain_pem)?;
            std::fs::write(dir.join(format!("{name}.key")), &leaf.key_pem)?;
        }
        Ok(())
    }

    /// Read what [`Self::write`] wrote.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let leaf = |name: &str| -> anyhow::Result<Leaf> {
            Ok(Leaf {
                chain_pem: std::fs::read_to_string(dir.join(format!("{name}.pem")))
                    .with_context(|| format!("reading {name}.pem"))?,
                key_pem: std::fs::read_to_string(dir.join(format!("{name}.key")))
                    .with_context(|| format!("reading {name}.key"))?,
            })
        };
        Ok(Self {
            rsa: leaf("rsa")?,
            ecdsa: leaf("ecdsa")?,
        })
    }

    pub fn leaf(&self, kind: CertKind) -> &Leaf {
        match kind {
            CertKind::Rsa2048 => &self.rsa,
            CertKind::EcdsaP256 => &self.ecdsa,
        }
    }
}

fn self_signed(key: KeyPair) -> anyhow::Result<Leaf> {
    let mut params =
        CertificateParams::new(vec!["mx.perf.test".to_string(), "*.perf.test".to_string()])?;
    let now = SystemTime::now();
    crate::certs::set_validity(
        &mut params,
        now - Duration::from_secs(86_400),
        now + Duration::from_secs(30 * 86_400),
    )?;
    let cert = params.self_signed(&key)?;
    Ok(Leaf {
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// What the servers saw.
#[derive(Debug, Default)]
pub struct Stats {
    open: AtomicUsize,
    peak: AtomicUsize,
    accepted: AtomicUsize,
    handshakes: AtomicUsize,
    /// Who came to which address when (the first [`MAX_SEEN`]).
    pub seen: Mutex<Vec<Seen>>,
}

impl Stats {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// A connection from `client` to `target` was accepted.
    pub(crate) fn opened(&self, target: IpAddr, client: IpAddr) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() < MAX_SEEN {
                seen.push(Seen {
                    target,
                    client,
                    at: Instant::now(),
                });
            }
        }
    }

    /// A connection ended.
    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// TLS servers for both certificates.
#[derive(Clone)]
pub struct Acceptors {
    rsa: TlsAcceptor,
    ecdsa: TlsAcceptor,
}

impl Acceptors {
    pub fn new(certs: &PerfCerts) -> anyhow::Result<Self> {
        Ok(Self {
            rsa: scripts::real(&certs.rsa)?,
            ecdsa: scripts::real(&certs.ecdsa)?,
        })
    }

    fn get(&self, kind: CertKind) -> &TlsAcceptor {
        match kind {
            CertKind::Rsa2048 => &self.rsa,
            CertKind::EcdsaP256 => &self.ecdsa,
        }
    }
}

/// Bind `(address, mode)` each on `port` (one listener each) and serve
/// forever; `greeting_delay` before each fast server's 220.
pub async fn serve(
    addrs: &[(IpAddr, Mode)],
    port: u16,
    acceptors: &Acceptors,
    greeting_delay: Duration,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    for (ip, mode) in addrs {
        let (mode, target) = (*mode, *ip);
        let stats = stats.clone();
        let acceptors = acceptors.clone();
        accept_on(target, port, "the perf lab server", move |stream, peer| {
            stats.opened(target, peer.ip());
            let stats = stats.clone();
            let acceptors = acceptors.clone();
            async move {
                let _ = session(stream, mode, &acceptors, greeting_delay, &stats).await;
                stats.closed();
            }
        })
        .await?;
    }
    Ok(())
}

/// Bind `ip:port` explicitly and hand every accepted connection (with its
/// peer) to `handle`, each on a task of its own. `handle` runs its first
/// part at accept time (counting), then the returned future. An accept
/// error (e.g. out of file descriptors) backs off 10 ms instead of spinning.
pub async fn accept_on<F, Fut>(ip: IpAddr, port: u16, what: &str, handle: F) -> anyhow::Result<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addr = SocketAddr::new(ip, port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} on {addr}"))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            tokio::spawn(handle(stream, peer));
        }
    });
    Ok(())
}

async fn session(
    mut stream: TcpStream,
    mode: Mode,
    acceptors: &Acceptors,
    greeting_delay: Duration,
    stats: &Stats,
) -> std::io::Result<()> {
    let kind = match mode {
        Mode::Tarpit => {
            let mut buf = [0u8; 256];
            let _ = tokio::time::timeout(TARPIT_HOLD, async {
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .await;
            return Ok(());
        }
        Mode::Refuse => {
            stream.write_all(b"421 4.7.0 perf.test busy\r\n").await?;
            return stream.shutdown().await;
        }
        Mode::Fast(kind) => kind,
    };
    if !greeting_delay.is_zero() {
        tokio::time::sleep(greeting_delay).await;
    }
    stream
        .write_all(b"220 mx.perf.test ESMTP perf lab\r\n")
        .await?;
    let mut lines = Lines::default();
    loop {
        let Some(line) = lines.next(&mut stream).await? else {
            return Ok(());
        };
        match verb(&line).as_str() {
            "EHLO" => {
                stream
                    .write_all(b"250-mx.perf.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                    .await?
            }
            "HELO" => stream.write_all(b"250 mx.perf.test\r\n").await?,
            "STARTTLS" => {
                stream.write_all(b"220 2.0.0 ready\r\n").await?;
                if !lines.buf.is_empty() {
                    return Ok(()); // pipelined after STARTTLS: refuse to go on
                }
                break;
            }
            "QUIT" => {
                stream.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => stream.write_all(b"502 5.5.2 not here\r\n").await?,
        }
    }
    let accept = acceptors.get(kind).accept(stream);
    let Ok(Ok(mut tls)) = tokio::time::timeout(COMMAND_WAIT, accept).await else {
        return Ok(());
    };
    stats.handshakes.fetch_add(1, Ordering::Relaxed);
    let mut lines = Lines {
        commands: lines.commands,
        ..Lines::default()
    };
    loop {
        let Some(line) = lines.next(&mut tls).await? else {
            return Ok(());
        };
        match verb(&line).as_str() {
            "EHLO" => {
                tls.write_all(b"250-mx.perf.test\r\n250 PIPELINING\r\n")
                    .await?
            }
            "QUIT" => {
                tls.write_all(b"221 2.0.0 bye\r\n").await?;
                let _ = tls.shutdown().await;
                return Ok(());
            }
            _ => tls.write_all(b"502 5.5.2 not here\r\n").await?,
        }
    }
}

fn verb(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Command lines read with bounds.
#[derive(Debug, Default)]
struct Lines {
    buf: Vec<u8>,
    commands: usize,
}

impl Lines {
    /// The next line (without CRLF); `None` when the client closed, the
    /// line was too long, the wait too long or the session too chatty.
    async fn next<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<Option<Vec<u8>>> {
        self.commands += 1;
        if self.commands > MAX_COMMANDS {
            return Ok(None);
        }
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_LINE {
                return Ok(None);
            }
            let mut chunk = [0u8; 512];
            let n = match tokio::time::timeout(COMMAND_WAIT, stream.read(&mut chunk)).await {
                Ok(read) => read?,
                Err(_) => return Ok(None),
            };
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarpits_and_refusals_are_spread_evenly() {
        let population = Population {
            tarpit_permille: 50,
            refuse_permille: 10,
        };
        let modes: Vec<Mode> = (0..10_000).map(|i| population.mode(i)).collect();
        let count = |m: Mode| modes.iter().filter(|x| **x == m).count();
        assert_eq!(count(Mode::Tarpit), 500);
        assert!((90..=100).contains(&count(Mode::Refuse)));
        // Every 20 addresses hold one tarpit.
        for chunk in modes.chunks(20) {
            assert_eq!(chunk.iter().filter(|m| **m == Mode::Tarpit).count(), 1);
        }
        assert_eq!(Population::default().mode(0), Mode::Fast(CertKind::Rsa2048));
        assert_eq!(
            Population::default().mode(1),
            Mode::Fast(CertKind::EcdsaP256)
        );
    }
}
