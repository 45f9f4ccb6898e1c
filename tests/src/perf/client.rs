//! The baselines of the performance lab's benchmarks, measured in the same
//! run as mxscope: a bare STARTTLS client (tokio-rustls, nothing recorded,
//! nothing parsed beyond the reply codes), a raw DNS query loop (one UDP
//! socket, hand-built queries), and the CPU time of a process
//! (`getrusage`) or of a child by its pid (`/proc/PID/stat`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use crate::perf::smtp::PerfCerts;

/// Longest reply the bare client reads.
const MAX_REPLY: usize = 4096;

/// CPU seconds (user + system) of this process, or of its waited-for
/// children (`RUSAGE_CHILDREN`).
pub fn cpu_seconds(children: bool) -> f64 {
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: getrusage writes one plain struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is a valid selector.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds of a running process (`/proc/PID/stat`, utime + stime).
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks.max(1.0))
}

/// Resident set of a running process in bytes (`/proc/PID/status`).
pub fn rss_of(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// The largest resident set a running process had so far, in bytes.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a bare client run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientRun {
    pub ok: usize,
    pub failed: usize,
    pub wall: Duration,
}

/// Probe every address of `targets` on `port` like a minimal MTA would
/// (greeting, EHLO, STARTTLS, a rustls handshake trusting the lab's two
/// certificates, EHLO, QUIT), `concurrency` at once, waiting `greeting`
/// for the greeting, as long as mxscope for every other step and `2 ×
/// greeting` for the whole session.
pub async fn bare_starttls(
    targets: &[IpAddr],
    port: u16,
    certs: &PerfCerts,
    concurrency: usize,
    greeting: Duration,
) -> anyhow::Result<ClientRun> {
    let mut roots = rustls::RootCertStore::empty();
    for leaf in [&certs.rsa, &certs.ecdsa] {
        for cert in CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes()) {
            roots.add(cert.context("a lab certificate")?)?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A full handshake every time, as mxscope does (it must see every
    // certificate): a resumed session would skip the certificate, its
    // verification and the server's signature.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = TlsConnector::from(Arc::new(config));
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    let mut run = ClientRun::default();
    let mut count = |done: Result<bool, tokio::task::JoinError>| match done {
        Ok(true) => run.ok += 1,
        _ => run.failed += 1,
    };
    for ip in targets {
        let permit = permits.clone().acquire_owned().await?;
        let connector = connector.clone();
        let addr = SocketAddr::new(*ip, port);
        running.spawn(async move {
            // The whole session: mxscope's `--timeout-session 2G`.
            let ok = tokio::time::timeout(greeting * 2, one(addr, &connector, greeting))
                .await
                .is_ok_and(|r| r.is_ok());
            drop(permit);
            ok
        });
        while let Some(done) = running.try_join_next() {
            count(done);
        }
    }
    while let Some(done) = running.join_next().await {
        count(done);
    }
    run.wall = started.elapsed();
    Ok(run)
}

/// The bare client's waits: those `mxscope scan` has in the benchmarks
/// (its defaults, `--timeout-greeting G --timeout-session 2G`).
const CONNECT_WAIT: Duration = Duration::from_secs(10);
const COMMAND_WAIT: Duration = Duration::from_secs(30);
const HANDSHAKE_WAIT: Duration = Duration::from_secs(20);

async fn one(addr: SocketAddr, connector: &TlsConnector, greeting: Duration) -> anyhow::Result<()> {
    let mut stream = tokio::time::timeout(CONNECT_WAIT, TcpStream::connect(addr)).await??;
    expect(&mut stream, greeting, b'2').await?;
    stream.write_all(b"EHLO bench.perf.test\r\n").await?;
    expect(&mut stream, COMMAND_WAIT, b'2').await?;
    stream.write_all(b"STARTTLS\r\n").await?;
    expect(&mut stream, COMMAND_WAIT, b'2').await?;
    let name = ServerName::try_from("mx.perf.test")?;
    let mut tls = tokio::time::timeout(HANDSHAKE_WAIT, connector.connect(name, stream)).await??;
    tls.write_all(b"EHLO bench.perf.test\r\n").await?;
    expect(&mut tls, COMMAND_WAIT, b'2').await?;
    tls.write_all(b"QUIT\r\n").await?;
    expect(&mut tls, COMMAND_WAIT, b'2').await?;
    Ok(())
}

/// Read one whole reply (`NNN-` lines until `NNN `) and check its first digit.
async fn expect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    wait: Duration,
    first_digit: u8,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(256);
    loop {
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(wait, stream.read(&mut chunk)).await??;
        anyhow::ensure!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
        anyhow::ensure!(buf.len() <= MAX_REPLY, "reply too long");
        // The last complete line decides whether the reply is whole.
        if buf.ends_with(b"\n") {
            let text = &buf[..buf.len() - 1];
            let last = text.rsplit(|b| *b == b'\n').next().unwrap_or_default();
            if last.len() >= 4 && last[3] == b' ' {
                anyhow::ensure!(buf.first() == Some(&first_digit), "unexpected reply");
                return Ok(());
            }
        }
    }
}

/// Raw DNS: one UDP socket, `in_flight` queries outstanding, each name of
/// `queries` asked once (type `qtype` each), 1 s per query then given up.
/// Returns (answered, wall).
pub async fn raw_dns(
    server: SocketAddr,
    queries: &[(String, u16)],
    in_flight: usize,
) -> anyhow::Result<(usize, Duration)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(server).await?;
    let started = Instant::now();
    let mut outstanding: HashMap<u16, Instant> = HashMap::new();
    let mut next = 0usize;
    let mut answered = 0usize;
    let mut id: u16 = 0;
    let mut buf = [0u8; 1500];
    while next < queries.len() || !outstanding.is_empty() {
        while outstanding.len() < in_flight && next < queries.len() {
            let (name, qtype) = &queries[next];
            next += 1;
            id = id.wrapping_add(1);
            while outstanding.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            socket.send(&query(id, name, *qtype)).await?;
            outstanding.insert(id, Instant::now());
        }
        match tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await {
            Ok(Ok(n)) if n >= 12 => {
                let got = u16::from_be_bytes([buf[0], buf[1]]);
                if outstanding.remove(&got).is_some() {
                    answered += 1;
                }
            }
            Ok(_) => {}
            Err(_) => {
                let now = Instant::now();
                outstanding.retain(|_, sent| now - *sent < Duration::from_secs(1));
            }
        }
    }
    Ok((answered, started.elapsed()))
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}
