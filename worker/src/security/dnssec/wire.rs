//! Single DNS queries on the wire, for the resolver self-check and the
//! diagnosis of failed validations: DO always set, CD on request (so that a
//! validating resolver hands over the data it judged bogus), UDP first and
//! TCP on truncation, every wait bounded.
//!
//! hickory's resolver hides the header bits (AD), cannot set CD and keeps
//! the reason of a failed validation to itself; these queries see it all.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use mxscope_common::record::security_dns::DnssecReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The EDNS payload size we advertise (the DNS flag day 2020 value).
const PAYLOAD: u16 = 1232;
/// Largest TCP answer read (a DNS message is at most 65535 bytes).
const MAX_TCP: usize = 65_535;
/// Stray datagrams skipped while waiting for our answer.
const MAX_STRAY: usize = 16;

/// How a query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// No server answered within the timeout.
    #[error("timed out")]
    Timeout,
    /// The answer was truncated and TCP failed.
    #[error("truncated over UDP and TCP failed: {0}")]
    Truncated(String),
    /// The network failed (connection refused, unreachable).
    #[error("network error: {0}")]
    Io(String),
    /// The answer could not be parsed.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl WireError {
    /// The reason a verdict that needed this query gets.
    pub fn reason(&self) -> DnssecReason {
        match self {
            Self::Timeout => DnssecReason::LookupTimeout,
            _ => DnssecReason::LookupFailed,
        }
    }
}

/// The reason of an answer whose response code says it has no data.
pub fn rcode_reason(code: ResponseCode) -> DnssecReason {
    match code {
        ResponseCode::Refused => DnssecReason::LookupRefused,
        ResponseCode::ServFail => DnssecReason::LookupServfail,
        _ => DnssecReason::LookupFailed,
    }
}

/// One resolver set asked query by query.
#[derive(Debug, Clone)]
pub struct Wire {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Wire {
    /// Ask `servers` in order (the next only when one does not answer),
    /// waiting at most `timeout` per server and transport.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self {
            servers,
            timeout: timeout.max(Duration::from_millis(10)),
        }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// `name`/`rtype` with DO set, CD as asked; UDP, TCP when truncated.
    pub async fn query(
        &self,
        name: &Name,
        rtype: RecordType,
        cd: bool,
    ) -> Result<Message, WireError> {
        let mut last = WireError::Io("no resolver configured".into());
        for server in &self.servers {
            match self.udp(*server, name, rtype, cd).await {
                Ok(answer) if answer.metadata.truncation => {
                    return self
                        .tcp(*server, name, rtype, cd)
                        .await
                        .map_err(|e| WireError::Truncated(e.to_string()));
                }
                Ok(answer) => return Ok(answer),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The same over TCP only (the self-check asks whether TCP works).
    pub async fn query_tcp(
        &self,
        name: &Name,
        rtype: RecordType,
        cd: bool,
    ) -> Result<Message, WireError> {
        let mut last = WireError::Io("no resolver configured".into());
        for server in &self.servers {
            match self.tcp(*server, name, rtype, cd).await {
                Ok(answer) => return Ok(answer),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn udp(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        cd: bool,
    ) -> Result<Message, WireError> {
        let (id, bytes) = request(name, rtype, cd)?;
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(server).await.map_err(io)?;
        socket.send(&bytes).await.map_err(io)?;
        let wait = async {
            let mut buf = vec![0u8; 4096];
            for _ in 0..MAX_STRAY {
                let n = socket.recv(&mut buf).await.map_err(io)?;
                let Some(answer) = buf.get(..n) else {
                    continue;
                };
                if let Some(message) = matching(answer, id, name, rtype)? {
                    return Ok(message);
                }
            }
            Err(WireError::Malformed("no answer to our query".into()))
        };
        tokio::time::timeout(self.timeout, wait)
            .await
            .map_err(|_| WireError::Timeout)?
    }

    async fn tcp(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        cd: bool,
    ) -> Result<Message, WireError> {
        let (id, bytes) = request(name, rtype, cd)?;
        let exchange = async {
            let mut stream = TcpStream::connect(server).await.map_err(io)?;
            let len = u16::try_from(bytes.len())
                .map_err(|_| WireError::Malformed("query too long".into()))?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            stream.write_all(&framed).await.map_err(io)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.map_err(io)?;
            let len = usize::from(u16::from_be_bytes(len)).min(MAX_TCP);
            let mut answer = vec![0u8; len];
            stream.read_exact(&mut answer).await.map_err(io)?;
            matching(&answer, id, name, rtype)?
                .ok_or_else(|| WireError::Malformed("answer to another query".into()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| WireError::Timeout)?
    }
}

fn io(e: std::io::Error) -> WireError {
    WireError::Io(e.to_string())
}

/// A query message with a random id: RD, DO, and CD when asked.
fn request(name: &Name, rtype: RecordType, cd: bool) -> Result<(u16, Vec<u8>), WireError> {
    let id: u16 = rand_id();
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.metadata.checking_disabled = cd;
    message.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(PAYLOAD);
    edns.set_dnssec_ok(true);
    message.set_edns(edns);
    let bytes = message
        .to_vec()
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok((id, bytes))
}

/// The parsed answer when it answers our query (id and question); `None`
/// for someone else's datagram.
fn matching(
    bytes: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
) -> Result<Option<Message>, WireError> {
    let message = Message::from_vec(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    let ours = message.metadata.id == id
        && message
            .queries
            .first()
            .is_some_and(|q| q.query_type() == rtype && q.name() == name);
    Ok(ours.then_some(message))
}

/// A query id that is hard to guess (nothing here is secret, but a
/// predictable id would let stray packets match).
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_reasons() {
        assert_eq!(
            rcode_reason(ResponseCode::Refused),
            DnssecReason::LookupRefused
        );
        assert_eq!(
            rcode_reason(ResponseCode::ServFail),
            DnssecReason::LookupServfail
        );
        assert_eq!(WireError::Timeout.reason(), DnssecReason::LookupTimeout);
        assert_eq!(
            WireError::Io("x".into()).reason(),
            DnssecReason::LookupFailed
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
        let wire = Wire::new(
            vec![silent.local_addr().expect("its address")],
            Duration::from_millis(100),
        );
        let name = Name::root();
        assert_eq!(
            wire.query(&name, RecordType::DNSKEY, true).await.err(),
            Some(WireError::Timeout)
        );
    }
}
