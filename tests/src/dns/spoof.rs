//! A fake name server for the cases no real one shows (a fake, said so):
//! before its true answer to [`DOMAIN`]'s MX it sends four forged ones —
//! a wrong ID, the right answer from another port, from another address
//! (127.0.0.2, bound explicitly), for another question — and bytes that are
//! no DNS message; [`TRUNCATED`]'s MX is truncated over UDP and whole over
//! TCP. Every forged answer names [`FORGED_EXCHANGE`], so accepting one
//! shows in the result. Loopback only; it runs on the caller's runtime.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// The domain whose MX answer comes after the forged ones.
pub const DOMAIN: &str = "spoofed.test";
/// The domain whose MX answer is truncated over UDP.
pub const TRUNCATED: &str = "truncated.test";
/// The true exchange of both domains.
pub const EXCHANGE: &str = "mx.spoofed.test";
/// The true exchange's address (data only: nothing connects to it).
pub const EXCHANGE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
/// The exchange every forged answer names.
pub const FORGED_EXCHANGE: &str = "forged.spoofed.test";
/// The forged answers sent before the true one, by the reason a resolver
/// must drop each: unexpected ID, wrong server (port), wrong server
/// (address), wrong question, malformed.
pub const FORGED: [&str; 5] = [
    "unexpected_id",
    "wrong_server",
    "wrong_server",
    "wrong_question",
    "malformed",
];

/// The running fake; its tasks end when it is dropped.
#[derive(Debug)]
pub struct SpoofingServer {
    pub addr: SocketAddr,
    tcp_queries: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl SpoofingServer {
    pub async fn start() -> anyhow::Result<Self> {
        // The port the kernel picks for UDP may be taken on 127.0.0.2 or
        // over TCP by another test: pick again.
        let mut tries = 0;
        let (udp, addr, other_host, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await?;
            let addr = udp.local_addr()?;
            let other_host = UdpSocket::bind(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
                addr.port(),
            ))
            .await;
            let tcp = TcpListener::bind(addr).await;
            match (other_host, tcp) {
                (Ok(other_host), Ok(tcp)) => break (udp, addr, other_host, tcp),
                (Err(e), _) | (_, Err(e)) if tries >= 50 => return Err(e.into()),
                _ => tries += 1,
            }
        };
        let other_port = UdpSocket::bind("127.0.0.1:0").await?;
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(udp, other_port, other_host));
        tasks.spawn(serve_tcp(tcp, tcp_queries.clone()));
        Ok(Self {
            addr,
            tcp_queries,
            _tasks: tasks,
        })
    }

    /// Queries that came over TCP so far.
    pub fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

fn name(s: &str) -> Name {
    Name::from_str(&format!("{s}.")).unwrap_or_else(|_| Name::root())
}

/// The true answer to `query` (MX of both domains, A of the exchange;
/// anything else has no records).
fn answer(query: &Message) -> Message {
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let Some(q) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(q.clone());
    let owner = q.name().clone();
    match q.query_type() {
        RecordType::MX if owner == name(DOMAIN) || owner == name(TRUNCATED) => {
            response.add_answer(mx(owner, EXCHANGE));
        }
        RecordType::A if owner == name(EXCHANGE) => {
            response.add_answer(Record::from_rdata(owner, 60, RData::A(A(EXCHANGE_IP))));
        }
        RecordType::A | RecordType::AAAA if owner == name(EXCHANGE) => {}
        _ => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response
}

fn mx(owner: Name, exchange: &str) -> Record {
    Record::from_rdata(owner, 60, RData::MX(MX::new(10, name(exchange))))
}

fn bytes(message: &Message) -> Vec<u8> {
    message.to_vec().unwrap_or_default()
}

async fn serve_udp(udp: UdpSocket, other_port: UdpSocket, other_host: UdpSocket) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((length, from)) = udp.recv_from(&mut buffer).await else {
            return;
        };
        let Ok(query) = Message::from_vec(&buffer[..length]) else {
            continue;
        };
        let truth = answer(&query);
        let asked = query.queries.first().map(|q| q.name().clone());
        if asked == Some(name(DOMAIN)) {
            let mut forged = truth.clone();
            forged.answers = vec![mx(name(DOMAIN), FORGED_EXCHANGE)];
            let mut wrong_id = forged.clone();
            wrong_id.metadata.id = forged.metadata.id.wrapping_add(1);
            let mut wrong_question = forged.clone();
            wrong_question.queries = vec![Query::query(name("other.test"), RecordType::MX)];
            wrong_question.answers = vec![mx(name("other.test"), FORGED_EXCHANGE)];
            let _ = udp.send_to(&bytes(&wrong_id), from).await;
            let _ = other_port.send_to(&bytes(&forged), from).await;
            let _ = other_host.send_to(&bytes(&forged), from).await;
            let _ = udp.send_to(&bytes(&wrong_question), from).await;
            let _ = udp.send_to(b"\x12\x34 no DNS message", from).await;
        }
        let reply = if asked == Some(name(TRUNCATED)) {
            let mut cut = truth;
            cut.answers.clear();
            cut.metadata.truncation = true;
            cut
        } else {
            truth
        };
        let _ = udp.send_to(&bytes(&reply), from).await;
    }
}

async fn serve_tcp(listener: TcpListener, count: Arc<AtomicUsize>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        count.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let Ok(length) = stream.read_u16().await else {
                return;
            };
            let mut query = vec![0u8; usize::from(length)];
            if stream.read_exact(&mut query).await.is_err() {
                return;
            }
            let Ok(query) = Message::from_vec(&query) else {
                return;
            };
            let reply = bytes(&answer(&query));
            let mut framed = u16::try_from(reply.len())
                .unwrap_or(0)
                .to_be_bytes()
                .to_vec();
            framed.extend_from_slice(&reply);
            let _ = stream.write_all(&framed).await;
        });
    }
}
