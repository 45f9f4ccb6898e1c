//! Scripted SSLv3 server (DESIGN §6): SSLv3 is compiled out of Debian's
//! OpenSSL, so no lab MTA can offer it. This one speaks just enough SMTP to
//! reach STARTTLS, then reads one TLS record: a ClientHello whose
//! `client_version` is SSLv3 (0x0300) gets a canned SSLv3 ServerHello; any
//! other record, including a modern TLS 1.2/1.3 hello, gets a fatal
//! `protocol_version` alert. Either way the connection then closes: no
//! handshake is ever completed.
//!
//! The ClientHello is parsed by hand here, not with the worker's code, so
//! the probe is checked against an independent reading of the bytes.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

/// Host name in the greeting (see [`crate::plan::MX_SSL3`]).
pub const HOST: &str = "mx-ssl3.lab.test";
/// Cipher suites the canned ServerHello may choose, in order of preference:
/// TLS_RSA_WITH_AES_128_CBC_SHA, then AES_256_CBC_SHA, 3DES_EDE_CBC_SHA,
/// RC4_128_SHA.
pub const SUITES: [u16; 4] = [0x002f, 0x0035, 0x000a, 0x0005];

/// Connections served at once; more wait in the accept backlog.
const MAX_CONNECTIONS: usize = 64;
/// Longest SMTP command line accepted.
const MAX_LINE: usize = 1024;
/// Largest TLS record accepted after STARTTLS (2^14 plus header slack).
const MAX_RECORD: usize = 5 + (1 << 14) + 256;
/// Deadline for each read.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for the whole session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

/// Serve SMTP with STARTTLS on `listener`, forever, one task per connection;
/// after STARTTLS, answer an SSLv3 ClientHello with a canned SSLv3
/// ServerHello and anything else with a `protocol_version` alert.
pub async fn serve(listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return; // the semaphore is never closed
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let deadline = Instant::now() + SESSION_TIMEOUT;
                    let _ = session(stream, deadline).await;
                    drop(permit);
                });
            }
            // e.g. out of file descriptors: back off instead of spinning
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Why a session ended early; only ever dropped.
#[derive(Debug)]
enum End {
    Io,
    Timeout,
    Closed,
}

impl From<std::io::Error> for End {
    fn from(_: std::io::Error) -> Self {
        Self::Io
    }
}

async fn session(mut stream: TcpStream, deadline: Instant) -> Result<(), End> {
    send(
        &mut stream,
        format!("220 {HOST} ESMTP scripted\r\n").as_bytes(),
        deadline,
    )
    .await?;
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_LINE);
    loop {
        let Some(line) = read_line(&mut stream, &mut buf, deadline).await? else {
            send(&mut stream, b"500 5.5.0 line too long\r\n", deadline).await?;
            return Ok(());
        };
        let line = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let verb = line.split_whitespace().next().unwrap_or("");
        let reply = match verb {
            "EHLO" => format!("250-{HOST}\r\n250 STARTTLS\r\n"),
            "HELO" => format!("250 {HOST}\r\n"),
            "NOOP" | "RSET" => "250 2.0.0 ok\r\n".to_owned(),
            "STARTTLS" => {
                send(&mut stream, b"220 ready\r\n", deadline).await?;
                // Bytes pipelined after STARTTLS stay in `buf`: they are the
                // start of the TLS record.
                return tls(stream, buf, deadline).await;
            }
            "QUIT" => {
                send(&mut stream, b"221 2.0.0 bye\r\n", deadline).await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognized\r\n".to_owned(),
        };
        send(&mut stream, reply.as_bytes(), deadline).await?;
    }
}

/// Answer the first TLS record, then close gracefully.
async fn tls(mut stream: TcpStream, mut buf: Vec<u8>, deadline: Instant) -> Result<(), End> {
    let answer = match read_record(&mut stream, &mut buf, deadline).await {
        Ok(record) => answer(&record),
        Err(End::Closed) => return Ok(()),
        // A partial or oversized record still gets the alert.
        Err(End::Timeout) => alert(0x0301, ALERT_PROTOCOL_VERSION),
        Err(e) => return Err(e),
    };
    send(&mut stream, &answer, deadline).await?;
    stream.shutdown().await?;
    // Drain until the client closes, so that unread bytes do not turn our
    // close into a reset that could overtake the answer.
    let drain_deadline = deadline.min(Instant::now() + Duration::from_secs(2));
    let mut sink = [0u8; 1024];
    while let Ok(Ok(n)) = timeout_at(drain_deadline, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

/// The canned answer to one record: an SSLv3 ServerHello or an alert.
fn answer(record: &[u8]) -> Vec<u8> {
    let record_version = match (record.get(1), record.get(2)) {
        (Some(&3), Some(&minor)) => u16::from_be_bytes([3, minor.min(3)]),
        _ => 0x0301,
    };
    match parse_client_hello(record) {
        Some(hello) if hello.version == 0x0300 => {
            match SUITES.iter().find(|s| hello.suites.contains(s)) {
                Some(&suite) => server_hello(suite),
                None => alert(0x0300, ALERT_HANDSHAKE_FAILURE),
            }
        }
        _ => alert(record_version, ALERT_PROTOCOL_VERSION),
    }
}

/// What the server looks at in a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `client_version`, the highest version offered.
    pub version: u16,
    /// Offered cipher suites.
    pub suites: Vec<u16>,
}

/// Parse one whole TLS record holding a ClientHello; `None` for anything
/// else (other record types, other messages, truncated fields).
pub fn parse_client_hello(record: &[u8]) -> Option<ClientHello> {
    let mut r = Reader(record);
    if r.u8()? != 0x16 || r.u8()? != 3 {
        return None;
    }
    let _minor = r.u8()?;
    let record_len = usize::from(r.u16()?);
    let mut payload = Reader(r.take(record_len)?);
    if payload.u8()? != 1 {
        return None;
    }
    let len = usize::from(payload.u8()?) << 16 | usize::from(payload.u16()?);
    let mut body = Reader(payload.take(len)?);
    let version = body.u16()?;
    body.take(32)?; // random
    let session_id = usize::from(body.u8()?);
    body.take(session_id)?;
    let suites_len = usize::from(body.u16()?);
    let suites = body
        .take(suites_len)?
        .chunks_exact(2)
        .filter_map(|pair| match *pair {
            [hi, lo] => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        })
        .collect();
    Some(ClientHello { version, suites })
}

/// A bounds-checked big-endian reader.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes = self.take(2)?;
        Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
    }
}

/// An SSLv3 ServerHello record choosing `suite`: record and server version
/// 0x0300, a 32-byte session id, null compression, no extensions.
pub fn server_hello(suite: u16) -> Vec<u8> {
    let mut body = vec![3, 0];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a)); // random
    body.push(32);
    body.extend((0..32u8).map(|i| i.wrapping_mul(11) ^ 0xa5)); // session id
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0); // compression: null
    let mut record = vec![0x16, 3, 0];
    record.extend_from_slice(&u16_len(body.len() + 4));
    record.push(2); // ServerHello
    record.push(0);
    record.extend_from_slice(&u16_len(body.len()));
    record.extend_from_slice(&body);
    record
}

/// A fatal alert record.
pub fn alert(record_version: u16, code: u8) -> Vec<u8> {
    let [major, minor] = record_version.to_be_bytes();
    vec![0x15, major, minor, 0, 2, 2, code]
}

/// Lengths here are of fixed, small messages.
fn u16_len(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

async fn send(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> Result<(), End> {
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
async fn fill(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
) -> Result<(), End> {
    let mut chunk = [0u8; 2048];
    let room = cap.saturating_sub(buf.len()).min(chunk.len());
    let window = chunk.get_mut(..room).ok_or(End::Timeout)?;
    let wait = deadline.min(Instant::now() + READ_TIMEOUT);
    let n = timeout_at(wait, stream.read(window))
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
async fn read_line(
    stream: &mut TcpStream,
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

/// One whole TLS record (header included); `Timeout` also for a header that
/// announces more than [`MAX_RECORD`].
async fn read_record(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, End> {
    loop {
        if let (Some(&hi), Some(&lo)) = (buf.get(3), buf.get(4)) {
            let total = 5 + usize::from(u16::from_be_bytes([hi, lo]));
            if total > MAX_RECORD {
                return Err(End::Timeout);
            }
            if let Some(record) = buf.get(..total) {
                return Ok(record.to_vec());
            }
        }
        // Not TLS at all (e.g. a plaintext command): answer at once.
        if buf.first().is_some_and(|&b| b != 0x16) {
            return Ok(buf.clone());
        }
        fill(stream, buf, MAX_RECORD, deadline).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(record_version: u16, client_version: u16, suites: &[u16]) -> Vec<u8> {
        let mut body = client_version.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&u16_len(suites.len() * 2));
        for s in suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut record = vec![0x16];
        record.extend_from_slice(&record_version.to_be_bytes());
        record.extend_from_slice(&u16_len(body.len() + 4));
        record.extend_from_slice(&[1, 0]);
        record.extend_from_slice(&u16_len(body.len()));
        record.extend_from_slice(&body);
        record
    }

    #[test]
    fn sslv3_hello_gets_server_hello() {
        let answer = answer(&hello(0x0300, 0x0300, &[0x0035, 0x002f]));
        assert_eq!(answer, server_hello(0x002f));
        assert_eq!(answer.get(..3), Some(&[0x16, 3, 0][..]));
        assert_eq!(answer.get(9..11), Some(&[3, 0][..]));
    }

    #[test]
    fn falls_back_to_other_suites() {
        assert_eq!(
            answer(&hello(0x0300, 0x0300, &[0x0005])),
            server_hello(0x0005)
        );
        assert_eq!(
            answer(&hello(0x0300, 0x0300, &[0xc013])),
            alert(0x0300, ALERT_HANDSHAKE_FAILURE)
        );
    }

    #[test]
    fn other_versions_get_protocol_version() {
        for (record_version, client_version) in
            [(0x0301, 0x0301), (0x0301, 0x0302), (0x0301, 0x0303)]
        {
            assert_eq!(
                answer(&hello(record_version, client_version, &[0x002f])),
                alert(0x0301, ALERT_PROTOCOL_VERSION)
            );
        }
        assert_eq!(
            answer(b"EHLO again\r\n"),
            alert(0x0301, ALERT_PROTOCOL_VERSION)
        );
        assert_eq!(answer(&[]), alert(0x0301, ALERT_PROTOCOL_VERSION));
    }

    #[test]
    fn truncated_hellos_do_not_parse() {
        let full = hello(0x0300, 0x0300, &[0x002f]);
        for end in 0..full.len() {
            assert_eq!(
                parse_client_hello(full.get(..end).unwrap_or_default()),
                None
            );
        }
        assert!(parse_client_hello(&full).is_some());
    }
}
