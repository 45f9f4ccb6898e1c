//! The one scripted fake SMTP server (STYLE §15): every odd peer of the lab
//! is a [`Script`] — greeting bytes, a reply per command, and what STARTTLS
//! does (a real rustls session, nothing, silence, a close, or a canned
//! answer to the client's first TLS record) — run by [`serve`]. A new
//! hostile case is a new script, not a new server.
//!
//! Every session is bounded: [`MAX_SESSION`] in time, [`MAX_LINE`] per
//! command line, [`MAX_RECORD`] for the client's first TLS record, at most
//! [`MAX_CONNECTIONS`] sessions at once per listener; scripted floods and
//! trickles carry their own byte bound. A script may be served to any
//! number of sessions (the probe's extra sessions see the same server).

pub mod fakes;
pub mod scripts;
pub mod sslv3;
pub mod vuln_tls;
pub mod weak_tls;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;

/// Longest any scripted session lasts.
pub const MAX_SESSION: Duration = Duration::from_secs(60);
/// Longest command line read; a longer one ends the session.
pub const MAX_LINE: usize = 1024;
/// Largest first TLS record read after STARTTLS (2^14 plus header slack).
pub const MAX_RECORD: usize = 5 + (1 << 14) + 256;
/// Sessions served at once per listener; more wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Most bytes one [`Step::Repeat`] or [`Step::Trickle`] may write.
pub const MAX_SCRIPTED_WRITE: usize = 8 * 1024 * 1024;

/// One thing the server does, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes (one write).
    Send(Vec<u8>),
    /// Wait this long.
    Pause(Duration),
    /// Write `line` again and again, `total` bytes at most.
    Repeat { line: Vec<u8>, total: usize },
    /// Write `bytes` cycled one byte at a time, `every` apart, `total` bytes.
    Trickle {
        bytes: Vec<u8>,
        every: Duration,
        total: usize,
    },
    /// Read and discard until the client closes (the session's deadline
    /// still holds).
    Drain,
    /// Close the connection.
    Close,
}

impl Step {
    /// [`Step::Send`] of a byte string.
    pub fn send(bytes: impl AsRef<[u8]>) -> Self {
        Self::Send(bytes.as_ref().to_vec())
    }
}

/// Steps that write `bytes` and go on reading commands.
pub fn say(bytes: impl AsRef<[u8]>) -> Vec<Step> {
    vec![Step::send(bytes)]
}

/// Answers a TLS record (a closure: it may hold keys).
pub type Answerer = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What the server does after its STARTTLS reply.
#[derive(Clone)]
pub enum Tls {
    /// Nothing: it goes on reading SMTP commands in plaintext (the client's
    /// ClientHello is then read as a command line).
    None,
    /// A real TLS session (rustls), then SMTP inside it.
    Real(TlsAcceptor),
    /// Read the client's first TLS record (bounded; a non-TLS first byte
    /// ends the read at once), write `answer(record)`, then follow `then`.
    Answer {
        answer: fn(&[u8]) -> Vec<u8>,
        then: Vec<Step>,
    },
    /// Do these steps at once, reading nothing.
    Steps(Vec<Step>),
    /// Answer every TLS record the client sends with `answer(record)`
    /// (nothing when it returns no bytes) until the client closes or the
    /// session's deadline: a handshake that goes on after the first record.
    Records { answer: Answerer },
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Real(_) => f.write_str("Real"),
            Self::Answer { then, .. } => f.debug_struct("Answer").field("then", then).finish(),
            Self::Steps(steps) => f.debug_tuple("Steps").field(steps).finish(),
            Self::Records { .. } => f.write_str("Records"),
        }
    }
}

/// One odd peer: what it says and does, command by command.
#[derive(Debug, Clone)]
pub struct Script {
    /// On connect.
    pub greeting: Vec<Step>,
    /// Reply to EHLO (before TLS).
    pub ehlo: Vec<Step>,
    /// Reply to HELO.
    pub helo: Vec<Step>,
    /// Reply to STARTTLS (before TLS).
    pub starttls: Vec<Step>,
    /// What follows the STARTTLS reply.
    pub tls: Tls,
    /// Reply to EHLO inside TLS.
    pub ehlo_tls: Vec<Step>,
    /// Reply to QUIT (then the session ends).
    pub quit: Vec<Step>,
    /// Reply to any other command.
    pub other: Vec<Step>,
}

impl Script {
    /// A well-behaved server named `host`: 220, EHLO with STARTTLS (and
    /// 8BITMIME), STARTTLS 220 into `tls`, EHLO inside TLS with PIPELINING.
    pub fn smtp(host: &str, tls: Tls) -> Self {
        Self {
            greeting: say(format!("220 {host} ESMTP scripted\r\n")),
            ehlo: say(format!("250-{host}\r\n250-8BITMIME\r\n250 STARTTLS\r\n")),
            helo: say(format!("250 {host}\r\n")),
            starttls: say("220 2.0.0 ready\r\n"),
            tls,
            ehlo_tls: say(format!("250-{host}\r\n250 PIPELINING\r\n")),
            quit: vec![Step::send("221 2.0.0 bye\r\n"), Step::Close],
            other: say("502 5.5.2 command not recognized\r\n"),
        }
    }

    /// A server named `host` that does not offer STARTTLS.
    pub fn plain(host: &str) -> Self {
        Self {
            ehlo: say(format!("250-{host}\r\n250 8BITMIME\r\n")),
            ..Self::smtp(host, Tls::None)
        }
    }
}

/// SMTP sessions per client address, counted by [`serve`].
pub type SessionCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Serve on `listener` forever, one task per session, each running the
/// script `script()` returns at accept time; sessions are counted per client
/// address into `counts`.
pub async fn serve<F>(listener: TcpListener, script: F, counts: SessionCounts)
where
    F: Fn() -> Arc<Script> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return; // the semaphore is never closed
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Ok(mut counts) = counts.lock() {
                    *counts.entry(peer.ip()).or_default() += 1;
                }
                let script = script();
                tokio::spawn(async move {
                    let deadline = Instant::now() + MAX_SESSION;
                    let _ = session(stream, &script, deadline).await;
                    drop(permit);
                });
            }
            // e.g. out of file descriptors: back off instead of spinning
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Serve one fixed script on `listener` (no one reads the counts).
pub async fn serve_script(listener: TcpListener, script: Script) {
    let script = Arc::new(script);
    serve(listener, move || script.clone(), SessionCounts::default()).await;
}

/// Why a session ended; only ever dropped.
#[derive(Debug)]
enum End {
    /// The script closed, or the client did.
    Closed,
    Io,
    Timeout,
}

impl From<std::io::Error> for End {
    fn from(_: std::io::Error) -> Self {
        Self::Io
    }
}

/// What a dialogue stopped for.
enum Next {
    StartTls,
}

async fn session(mut stream: TcpStream, script: &Script, deadline: Instant) -> Result<(), End> {
    let mut buf = Vec::with_capacity(MAX_LINE);
    run(&mut stream, &script.greeting, deadline).await?;
    let Next::StartTls = dialogue(&mut stream, &mut buf, script, false, deadline).await?;
    run(&mut stream, &script.starttls, deadline).await?;
    match &script.tls {
        Tls::None => {
            // STARTTLS changed nothing: SMTP goes on, in plaintext.
            let Next::StartTls = dialogue(&mut stream, &mut buf, script, true, deadline).await?;
            Ok(())
        }
        Tls::Real(acceptor) => {
            // The probe never pipelines after STARTTLS; anything buffered
            // here is dropped, not fed to the TLS session.
            let accept = acceptor.accept(stream);
            let mut tls = timeout_at(deadline, accept)
                .await
                .map_err(|_| End::Timeout)??;
            let mut inner = Vec::with_capacity(MAX_LINE);
            let Next::StartTls = dialogue(&mut tls, &mut inner, script, true, deadline).await?;
            Ok(())
        }
        Tls::Answer { answer, then } => {
            let record = read_record(&mut stream, &mut buf, deadline).await?;
            run(&mut stream, &[Step::Send(answer(&record))], deadline).await?;
            run(&mut stream, then, deadline).await?;
            linger(&mut stream, deadline).await
        }
        Tls::Steps(steps) => {
            run(&mut stream, steps, deadline).await?;
            linger(&mut stream, deadline).await
        }
        Tls::Records { answer } => loop {
            let record = next_record(&mut stream, &mut buf, deadline).await?;
            let reply = answer(&record);
            if !reply.is_empty() {
                run(&mut stream, &[Step::Send(reply)], deadline).await?;
            }
        },
    }
}

/// The next whole TLS record of any type, taken out of `buf` (bounded by
/// [`MAX_RECORD`]; bytes that are not TLS are returned as they are).
async fn next_record(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, End> {
    loop {
        if buf.first().is_some_and(|b| !(0x14..=0x18).contains(b)) {
            return Ok(std::mem::take(buf));
        }
        if let (Some(&hi), Some(&lo)) = (buf.get(3), buf.get(4)) {
            let total = (5 + usize::from(u16::from_be_bytes([hi, lo]))).min(MAX_RECORD);
            if buf.len() >= total {
                return Ok(buf.drain(..total).collect());
            }
        }
        fill(stream, buf, MAX_RECORD, deadline).await?;
    }
}

/// Read commands and answer them from the script until STARTTLS (returned
/// only when `started` is false: a second STARTTLS is refused with 503), the
/// client closes, or a step closes.
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    script: &Script,
    started: bool,
    deadline: Instant,
) -> Result<Next, End> {
    let refused = say("503 5.5.1 TLS already active\r\n");
    loop {
        let Some(line) = read_line(stream, buf, deadline).await? else {
            run(stream, &say("500 5.5.0 line too long\r\n"), deadline).await?;
            return Err(End::Closed);
        };
        let line = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let verb = line.split_whitespace().next().unwrap_or("");
        let steps = match verb {
            "EHLO" if started && matches!(script.tls, Tls::Real(_)) => &script.ehlo_tls,
            "EHLO" => &script.ehlo,
            "HELO" => &script.helo,
            "STARTTLS" if !started => return Ok(Next::StartTls),
            "STARTTLS" => &refused,
            "QUIT" => {
                run(stream, &script.quit, deadline).await?;
                return Err(End::Closed);
            }
            _ => &script.other,
        };
        run(stream, steps, deadline).await?;
    }
}

/// Do `steps` in order.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    steps: &[Step],
    deadline: Instant,
) -> Result<(), End> {
    for step in steps {
        match step {
            Step::Send(bytes) => send(stream, bytes, deadline).await?,
            Step::Pause(pause) => {
                let until = deadline.min(Instant::now() + *pause);
                tokio::time::sleep_until(until).await;
            }
            Step::Repeat { line, total } => {
                let total = (*total).min(MAX_SCRIPTED_WRITE);
                let mut written = 0;
                while written < total && !line.is_empty() {
                    send(stream, line, deadline).await?;
                    written += line.len();
                }
            }
            Step::Trickle {
                bytes,
                every,
                total,
            } => {
                let total = (*total).min(MAX_SCRIPTED_WRITE);
                for byte in bytes.iter().cycle().take(total) {
                    send(stream, &[*byte], deadline).await?;
                    let until = deadline.min(Instant::now() + *every);
                    tokio::time::sleep_until(until).await;
                }
            }
            Step::Drain => {
                let mut sink = [0u8; 1024];
                while timeout_at(deadline, stream.read(&mut sink))
                    .await
                    .map_err(|_| End::Timeout)??
                    > 0
                {}
                return Err(End::Closed);
            }
            Step::Close => {
                let _ = timeout_at(deadline, stream.shutdown()).await;
                return Err(End::Closed);
            }
        }
    }
    Ok(())
}

/// After a canned TLS answer: close our side, then drain (bounded) until the
/// client closes, so that unread bytes do not turn our close into a reset
/// that could overtake the answer.
async fn linger(stream: &mut TcpStream, deadline: Instant) -> Result<(), End> {
    let _ = stream.shutdown().await;
    let until = deadline.min(Instant::now() + Duration::from_secs(2));
    let mut sink = [0u8; 1024];
    while let Ok(Ok(n)) = timeout_at(until, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    deadline: Instant,
) -> Result<(), End> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    timeout_at(deadline, write)
        .await
        .map_err(|_| End::Timeout)??;
    Ok(())
}

/// Read more into `buf`, at most `cap` bytes in total; `Closed` on EOF.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
) -> Result<(), End> {
    let mut chunk = [0u8; 2048];
    let room = cap.saturating_sub(buf.len()).min(chunk.len());
    let window = chunk.get_mut(..room).ok_or(End::Timeout)?;
    let n = timeout_at(deadline, stream.read(window))
        .await
        .map_err(|_| End::Timeout)??;
    if n == 0 {
        return Err(End::Closed);
    }
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(())
}

/// One CRLF- (or LF-) terminated line, without its ending; `None` if longer
/// than [`MAX_LINE`].
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, End> {
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
        if buf.len() >= MAX_LINE {
            return Ok(None);
        }
        fill(stream, buf, MAX_LINE, deadline).await?;
    }
}

/// The client's first TLS record (header included). A header announcing
/// more than [`MAX_RECORD`], or a first byte that is not a TLS handshake,
/// ends the read with what is there: the answer function decides.
async fn read_record(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, End> {
    loop {
        if let (Some(&hi), Some(&lo)) = (buf.get(3), buf.get(4)) {
            let total = 5 + usize::from(u16::from_be_bytes([hi, lo]));
            if total > MAX_RECORD {
                return Ok(buf.clone());
            }
            if let Some(record) = buf.get(..total) {
                return Ok(record.to_vec());
            }
        }
        if buf.first().is_some_and(|&b| b != 0x16) {
            return Ok(buf.clone());
        }
        fill(stream, buf, MAX_RECORD, deadline).await?;
    }
}
