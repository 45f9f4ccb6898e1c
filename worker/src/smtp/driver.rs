//! The thin tokio driver of the dialogue: it owns the socket, applies the
//! per-phase timeouts and the absolute session deadline, and moves bytes
//! between the peer and [`ReplyParser`] / [`State`]. It makes no decision
//! the dialogue could make.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use mxscope_common::{Outcome, Phase, Timings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::dialogue::{AfterTls, Command, End, State, Step, Transcript};
use super::reply::{Limits, ParsedReply, ReplyError, ReplyParser};

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 4096;
/// Longest wait for the reply to our `QUIT`.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Per-phase timeouts and the absolute session deadline (DESIGN §4): the
/// scan options' type, enforced here.
pub use mxscope_common::options::Timeouts;

/// Connect from `bind` (if any) to `addr`, within the connect timeout and
/// the session deadline. Errors carry the outcome they mean.
pub async fn connect(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, End> {
    let end = |outcome, detail: String| End {
        outcome,
        phase: Phase::Connect,
        detail: Some(detail),
        send_quit: false,
    };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| end(Outcome::Unreachable, format!("creating socket: {e}")))?;
    if let Some(source) = bind {
        let source = match (source, addr) {
            (IpAddr::V4(_), SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            (IpAddr::V6(_), SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => source,
        };
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| end(Outcome::Unreachable, format!("binding to {source}: {e}")))?;
    }
    let wait = deadline.min(Instant::now() + timeout);
    match tokio::time::timeout_at(wait, socket.connect(addr)).await {
        Err(_) => Err(end(
            Outcome::ConnectTimeout,
            format!("no answer within {timeout:?}"),
        )),
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            let outcome = match e.kind() {
                io::ErrorKind::ConnectionRefused => Outcome::ConnectRefused,
                io::ErrorKind::TimedOut => Outcome::ConnectTimeout,
                _ => Outcome::Unreachable,
            };
            Err(end(outcome, e.to_string()))
        }
    }
}

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no complete reply within {0:?}")]
    Timeout(Duration),
    #[error("session deadline passed")]
    Deadline,
    #[error("connection closed by the server")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Protocol(#[from] ReplyError),
}

impl ReadError {
    /// The outcome a read failure in `phase` means.
    pub fn into_end(self, phase: Phase) -> End {
        let outcome = match self {
            Self::Timeout(_) | Self::Deadline => Outcome::Timeout,
            Self::Closed | Self::Io(_) | Self::Protocol(_) => Outcome::ProtocolError,
        };
        End {
            outcome,
            phase,
            detail: Some(format!("{phase:?}: {self}").to_lowercase()),
            send_quit: false,
        }
    }
}

/// A connection speaking SMTP: the stream plus the session's reply buffer.
#[derive(Debug)]
pub struct Conn<S> {
    pub stream: S,
    pub parser: ReplyParser,
    pub deadline: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S, limits: Limits, deadline: Instant) -> Self {
        Self {
            stream,
            parser: ReplyParser::new(limits),
            deadline,
        }
    }

    /// Move the session (buffer, deadline) onto another stream, e.g. TLS.
    pub fn map<T>(self, stream: impl FnOnce(S) -> T) -> Conn<T> {
        Conn {
            stream: stream(self.stream),
            parser: self.parser,
            deadline: self.deadline,
        }
    }

    /// Read one whole reply within `timeout` and the session deadline.
    pub async fn read_reply(&mut self, timeout: Duration) -> Result<ParsedReply, ReadError> {
        let phase_end = Instant::now() + timeout;
        let wait = phase_end.min(self.deadline);
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if let Some(reply) = self.parser.next_reply()? {
                return Ok(reply);
            }
            // Read at most one byte past the budget, so `feed` sees the overflow.
            let room = (self.parser.budget_left() + 1).min(READ_CHUNK);
            let buf = chunk.get_mut(..room).unwrap_or_default();
            let n = match tokio::time::timeout_at(wait, self.stream.read(buf)).await {
                Err(_) if wait == self.deadline => return Err(ReadError::Deadline),
                Err(_) => return Err(ReadError::Timeout(timeout)),
                Ok(result) => result?,
            };
            if n == 0 {
                return Err(ReadError::Closed);
            }
            self.parser.feed(chunk.get(..n).unwrap_or_default())?;
        }
    }

    /// Send one command within `timeout` and the session deadline.
    pub async fn send(&mut self, command: &Command, timeout: Duration) -> Result<(), ReadError> {
        let wait = (Instant::now() + timeout).min(self.deadline);
        let bytes = command.to_bytes();
        match tokio::time::timeout_at(wait, async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        })
        .await
        {
            Err(_) => Err(ReadError::Timeout(timeout)),
            Ok(result) => Ok(result?),
        }
    }

    /// Say goodbye politely; whatever the server answers (or not) is ignored.
    pub async fn quit(&mut self, timeout: Duration) {
        let timeout = timeout.min(QUIT_WAIT);
        if self.send(&Command::Quit, timeout).await.is_ok() {
            let _ = self.read_reply(timeout).await;
        }
        let _ = tokio::time::timeout(timeout, self.stream.shutdown()).await;
    }

    /// Run the dialogue from `state` until it ends or asks for TLS.
    pub async fn drive(
        &mut self,
        mut state: State,
        transcript: &mut Transcript,
        timeouts: &Timeouts,
        timings: &mut Timings,
    ) -> Driven {
        let mut started = Instant::now();
        loop {
            let phase = state.phase();
            let timeout = if phase == Phase::Greeting {
                timeouts.greeting
            } else {
                timeouts.command
            };
            let reply = match self.read_reply(timeout).await {
                Ok(reply) => reply,
                Err(e) => return Driven::Done(e.into_end(phase)),
            };
            record_timing(timings, phase, started.elapsed());
            match state.on_reply(&reply, transcript) {
                Step::Send(command, next) => {
                    if let Err(e) = self.send(&command, timeouts.command).await {
                        return Driven::Done(e.into_end(next.phase()));
                    }
                    started = Instant::now();
                    state = next;
                }
                Step::StartTls(after) => return Driven::StartTls(after),
                Step::Done(end) => return Driven::Done(end),
            }
        }
    }
}

impl Conn<TcpStream> {
    /// Bytes the server sent after STARTTLS's 220 and before our ClientHello
    /// (already buffered, or already waiting in the socket). They are
    /// dropped: nothing of them may reach TLS.
    pub fn take_injected(&mut self) -> Vec<u8> {
        let mut injected = self.parser.take_buffered();
        let mut chunk = [0u8; READ_CHUNK];
        while injected.len() < READ_CHUNK * 4 {
            match self.stream.try_read(&mut chunk) {
                Ok(n) if n > 0 => injected.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                _ => break,
            }
        }
        injected
    }
}

/// Where [`Conn::drive`] stopped.
#[derive(Debug)]
pub enum Driven {
    StartTls(AfterTls),
    Done(End),
}

/// Store the duration of a reply wait in its phase's timing.
pub fn record_timing(timings: &mut Timings, phase: Phase, elapsed: Duration) {
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let slot = match phase {
        Phase::Connect => &mut timings.connect,
        Phase::Greeting => &mut timings.greeting,
        // EHLO and a HELO fallback count as one phase.
        Phase::Ehlo | Phase::Helo => {
            timings.ehlo = Some(timings.ehlo.unwrap_or(0).saturating_add(ms));
            return;
        }
        Phase::Starttls => &mut timings.starttls,
        Phase::TlsHandshake => &mut timings.handshake,
        Phase::EhloTls => &mut timings.ehlo_tls,
        _ => return,
    };
    *slot = Some(ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::dialogue::ExpectGreeting;
    use tokio::io::duplex;

    #[tokio::test]
    async fn drives_to_starttls_over_a_pipe() {
        let (client, mut server) = duplex(4096);
        let server_task = tokio::spawn(async move {
            server.write_all(b"220 mx ESMTP\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"EHLO probe.example\r\n");
            server
                .write_all(b"250-mx\r\n250 STARTTLS\r\n")
                .await
                .unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"STARTTLS\r\n");
            server.write_all(b"220 go\r\n").await.unwrap();
            server
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut conn = Conn::new(client, Limits::default(), deadline);
        let mut transcript = Transcript::default();
        let mut timings = Timings::default();
        let driven = conn
            .drive(
                ExpectGreeting::start("probe.example".parse().unwrap()),
                &mut transcript,
                &Timeouts::default(),
                &mut timings,
            )
            .await;
        assert!(matches!(driven, Driven::StartTls(_)));
        assert_eq!(transcript.ehlo, ["STARTTLS"]);
        assert!(timings.greeting.is_some() && timings.ehlo.is_some());
        drop(server_task.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn session_deadline_bounds_a_trickling_server() {
        let (client, mut server) = duplex(4096);
        tokio::spawn(async move {
            for byte in b"220-slow\r\n".iter().cycle() {
                if server.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut conn = Conn::new(client, Limits::default(), deadline);
        let err = conn.read_reply(Duration::from_secs(60)).await.unwrap_err();
        assert!(matches!(err, ReadError::Deadline), "{err}");
    }
}
