//! Queries to the name servers, sized for populations (issue 22): a few
//! long-lived UDP sockets carry every query of a resolver at once, answers
//! are matched by ID, server and question, and TCP is used only when an
//! answer is truncated. No socket, task or large future per query.
//!
//! A datagram lost on the way is sent again (same ID) after a
//! retransmission timeout that follows the answers' round trip (RFC 6298,
//! at least [`super::rtt::MIN_RTO`], doubling), within the attempt's timeout: a full
//! receive queue at the server costs a fraction of a second, not an
//! attempt.
//!
//! Queries are sent in batches: a query joins its socket's outbox, and the
//! socket's sender sends everything queued in one `sendmmsg` once the
//! queries that became ready at the same time have joined. Consecutive
//! queries take the same socket ([`QUERIES_PER_TURN`]), so a batch is
//! many queries. One system call and one wake-up of the server per batch,
//! instead of per query: on a loopback resolver each `sendto` woke the
//! server, which then took the core from the resolving thread.
//!
//! Each socket's sender and receiver tasks are in [`io`].
//!
//! Against spoofing: each socket is bound to a port the kernel picks at
//! random from its ephemeral range and is replaced after
//! [`QUERIES_PER_SOCKET`] queries; IDs are random (from the system's
//! CSPRNG) and never shared by two queries waiting on one socket; an
//! answer counts only when it comes from the server asked (address and
//! port) and repeats the question (name, type, class). Everything else is
//! dropped and counted ([`Dropped`], `mxscope_worker_dns_answers_dropped`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use mxscope_common::DnsStatus;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::answers::Failure;
use super::rtt::{RoundTrip, MAX_RTO};
use super::wire;

mod io;
use io::{receive, send, Outgoing};

/// UDP sockets per address family: a thousand queries at once are about
/// 60 per socket, which a stock receive buffer holds.
const SOCKETS: usize = 16;
/// Receive buffer asked for each socket (the kernel caps it at
/// `net.core.rmem_max`): a burst of answers must not overflow it.
const RECEIVE_BUFFER: usize = 1 << 20;
/// Queries a socket carries before a fresh one (a new random port) takes
/// its place; the old one lives on until its last answer or timeout.
pub const QUERIES_PER_SOCKET: u64 = 10_000;
/// Consecutive queries sent on one socket before the next socket's turn:
/// they leave in one batch.
const QUERIES_PER_TURN: usize = 32;
/// Datagrams per `sendmmsg` call at most.
const SEND_BATCH: usize = 64;
/// Datagrams per `recvmmsg` call at most.
const RECEIVE_BATCH: usize = 16;
/// Queries waiting on one socket at most (of 65,536 IDs).
const MAX_WAITING: usize = 16_384;
/// Largest UDP answer read (the largest datagram).
const MAX_DATAGRAM: usize = 65_535;
/// How often an idle, replaced socket checks whether it can close.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Answers dropped because they did not match a waiting query, by reason.
#[derive(Debug, Default)]
pub(super) struct Dropped {
    /// No query waits for that ID on that socket (a guess, or too late).
    pub(super) unexpected_id: AtomicU64,
    /// From another address or port than the server asked.
    pub(super) wrong_server: AtomicU64,
    /// For another name, type or class than asked.
    pub(super) wrong_question: AtomicU64,
    /// Not a DNS response at all.
    pub(super) malformed: AtomicU64,
}

impl Dropped {
    fn count(&self, reason: &'static str) {
        let counter = match reason {
            "unexpected_id" => &self.unexpected_id,
            "wrong_server" => &self.wrong_server,
            "wrong_question" => &self.wrong_question,
            _ => &self.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        crate::metrics::dns_answer_dropped(reason);
    }
}

/// Sends queries to the configured servers and matches their answers.
#[derive(Debug, Clone)]
pub(super) struct Transport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    attempts: u32,
    v4: Pool,
    v6: Pool,
    next_server: AtomicUsize,
    rtt: RoundTrip,
    dropped: Arc<Dropped>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Transport {
    pub(super) fn new(servers: Vec<SocketAddr>, timeout: Duration, attempts: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                servers,
                timeout,
                attempts: attempts.max(1),
                v4: Pool::new("0.0.0.0:0"),
                v6: Pool::new("[::]:0"),
                next_server: AtomicUsize::new(0),
                rtt: RoundTrip::new(),
                dropped: Arc::new(Dropped::default()),
                stop: CancellationToken::new(),
            }),
        }
    }

    pub(super) fn dropped(&self) -> &Dropped {
        &self.inner.dropped
    }

    /// Ask `name`/`rtype`: each attempt goes to the next server over UDP
    /// (then TCP when the answer is truncated) and waits one timeout. The
    /// answer to the question, whatever its response code, or the failure
    /// of the last attempt.
    pub(super) async fn query(&self, name: &Name, rtype: RecordType) -> Result<Message, Failure> {
        let inner = &*self.inner;
        let first = inner.next_server.fetch_add(1, Ordering::Relaxed);
        let mut last = Err(Failure::new(DnsStatus::Timeout));
        for attempt in 0..inner.attempts as usize {
            let Some(&server) = inner
                .servers
                .get((first + attempt) % inner.servers.len().max(1))
            else {
                break;
            };
            let deadline = tokio::time::Instant::now() + inner.timeout;
            let answer = match self.udp(server, name, rtype, deadline).await {
                Ok(message) if message.metadata.truncation => {
                    match tokio::time::timeout(inner.timeout, tcp(server, name, rtype)).await {
                        Ok(answer) => answer,
                        Err(_) => Err(Failure::new(DnsStatus::Timeout)),
                    }
                }
                answer => answer,
            };
            // Like hickory: a server failure or refusal is asked of the
            // next server, when there is another.
            let another = inner.servers.len() > 1;
            match answer {
                Ok(message)
                    if another
                        && !matches!(
                            message.metadata.response_code,
                            ResponseCode::NoError | ResponseCode::NXDomain
                        ) =>
                {
                    last = Ok(message);
                }
                Ok(message) => return Ok(message),
                Err(failure) => last = Err(failure),
            }
        }
        last
    }

    /// One attempt over UDP, until `deadline` (a timeout then). Its one
    /// timer is the next retransmission's or the deadline, whichever
    /// comes first.
    async fn udp(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        deadline: tokio::time::Instant,
    ) -> Result<Message, Failure> {
        let inner = &*self.inner;
        let pool = if server.is_ipv4() {
            &inner.v4
        } else {
            &inner.v6
        };
        let channel = pool
            .channel(&inner.dropped, &inner.stop)
            .map_err(|e| error(format!("opening a UDP socket: {e}")))?;
        let (reply, answer) = oneshot::channel();
        let waiting = channel.wait(Waiter {
            server,
            name: name.clone(),
            rtype,
            reply,
        })?;
        let bytes: Arc<[u8]> = wire::query(waiting.id, name, rtype).into();
        // A datagram lost on the way (a server's full receive queue) is
        // sent again, same ID, after the retransmission timeout, doubling,
        // until the attempt's deadline ends the wait.
        let mut answer = answer;
        let mut rto = inner.rtt.timeout();
        let sent = tokio::time::Instant::now();
        let mut retransmitted = false;
        loop {
            channel.send(Outgoing {
                id: waiting.id,
                ticket: waiting.ticket,
                bytes: bytes.clone(),
                to: server,
            });
            let wake = deadline.min(tokio::time::Instant::now() + rto);
            match tokio::time::timeout_at(wake, &mut answer).await {
                Ok(Ok(Ok(message))) => {
                    // Karn: a retransmitted query's time says nothing.
                    if !retransmitted {
                        inner.rtt.observe(sent.elapsed());
                    }
                    return Ok(message);
                }
                // The query could not be sent.
                Ok(Ok(Err(failure))) => return Err(failure),
                Ok(Err(_)) => return Err(error("the resolver stopped".into())),
                Err(_) if wake >= deadline => return Err(Failure::new(DnsStatus::Timeout)),
                Err(_) => {
                    retransmitted = true;
                    rto = (rto * 2).min(MAX_RTO);
                }
            }
        }
    }
}

fn error(message: String) -> Failure {
    Failure {
        status: DnsStatus::Error,
        message,
    }
}

/// One query over TCP (a fresh connection), for a truncated UDP answer.
async fn tcp(server: SocketAddr, name: &Name, rtype: RecordType) -> Result<Message, Failure> {
    let id = random_ids(1).first().copied().unwrap_or(0);
    let query = wire::query(id, name, rtype);
    let io = |e: std::io::Error| error(format!("DNS over TCP: {e}"));
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&u16::try_from(query.len()).unwrap_or(u16::MAX).to_be_bytes());
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await.map_err(io)?;
    let length = stream.read_u16().await.map_err(io)?;
    let mut bytes = vec![0; usize::from(length)];
    stream.read_exact(&mut bytes).await.map_err(io)?;
    match Message::from_vec(&bytes) {
        Ok(m) if m.metadata.id == id && wire::answers_question(&m, name, rtype) => Ok(m),
        Ok(_) => Err(error("DNS over TCP: an answer to another query".into())),
        Err(e) => Err(error(format!("DNS over TCP: a malformed answer: {e}"))),
    }
}

/// `n` random IDs from the system's CSPRNG.
fn random_ids(n: usize) -> Vec<u16> {
    let mut bytes = vec![0u8; 2 * n];
    // The system RNG fails only when the kernel has none; IDs of 0 then.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// The sockets of one address family, opened on first use (inside the
/// runtime that runs the receivers).
#[derive(Debug)]
struct Pool {
    bind: &'static str,
    slots: Mutex<Vec<Arc<Channel>>>,
    next: AtomicUsize,
}

impl Pool {
    fn new(bind: &'static str) -> Self {
        Self {
            bind,
            slots: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// The next socket in turn, replaced first when it has carried its share.
    fn channel(
        &self,
        dropped: &Arc<Dropped>,
        stop: &CancellationToken,
    ) -> std::io::Result<Arc<Channel>> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) / QUERIES_PER_TURN % SOCKETS;
        let mut slots = lock(&self.slots);
        while slots.len() < SOCKETS {
            slots.push(Channel::open(self.bind, dropped, stop)?);
        }
        let slot = &mut slots[index];
        if slot.sent.fetch_add(1, Ordering::Relaxed) >= QUERIES_PER_SOCKET {
            slot.retire();
            *slot = Channel::open(self.bind, dropped, stop)?;
            slot.sent.store(1, Ordering::Relaxed);
        }
        Ok(slot.clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A query waiting for its answer.
#[derive(Debug)]
struct Waiter {
    server: SocketAddr,
    name: Name,
    rtype: RecordType,
    /// The answer, or why the query could not be sent.
    reply: oneshot::Sender<Result<Message, Failure>>,
}

/// One UDP socket, the queries waiting on it, and its receiver task.
#[derive(Debug)]
struct Channel {
    socket: UdpSocket,
    state: Mutex<State>,
    sent: AtomicU64,
    /// Datagrams for the sender's next batch.
    outbox: Mutex<Vec<Outgoing>>,
    /// Wakes the sender (also when the channel is gone).
    queued: Arc<Notify>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.queued.notify_one();
    }
}

#[derive(Debug, Default)]
struct State {
    /// Waiting queries by ID, with the ticket of their registration.
    waiting: HashMap<u16, (u64, Waiter)>,
    tickets: u64,
    ids: Vec<u16>,
    retired: bool,
}

impl Channel {
    fn open(
        bind: &str,
        dropped: &Arc<Dropped>,
        stop: &CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let socket = std::net::UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        // Best effort: the default buffer still works, with more drops.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER);
        let queued = Arc::new(Notify::new());
        let channel = Arc::new(Self {
            socket: UdpSocket::from_std(socket)?,
            state: Mutex::new(State::default()),
            sent: AtomicU64::new(0),
            outbox: Mutex::new(Vec::new()),
            queued: queued.clone(),
        });
        tokio::spawn(receive(channel.clone(), dropped.clone(), stop.clone()));
        tokio::spawn(send(Arc::downgrade(&channel), queued, stop.clone()));
        Ok(channel)
    }

    fn retire(&self) {
        lock(&self.state).retired = true;
    }

    /// Register `waiter` under a random ID no other waiting query holds.
    fn wait(self: &Arc<Self>, waiter: Waiter) -> Result<Waiting, Failure> {
        let mut state = lock(&self.state);
        if state.waiting.len() >= MAX_WAITING {
            return Err(error("too many queries waiting on one socket".into()));
        }
        let mut tries = 0;
        let id = loop {
            if state.ids.is_empty() {
                state.ids = random_ids(256);
            }
            let id = state.ids.pop().unwrap_or_default();
            if !state.waiting.contains_key(&id) {
                break id;
            }
            tries += 1;
            if tries > 1024 {
                return Err(error("no free query ID".into()));
            }
        };
        state.tickets += 1;
        let ticket = state.tickets;
        state.waiting.insert(id, (ticket, waiter));
        Ok(Waiting {
            channel: self.clone(),
            id,
            ticket,
        })
    }

    /// An answer from `from`: given to its waiting query, or dropped and
    /// counted.
    fn deliver(&self, bytes: &[u8], from: SocketAddr, dropped: &Dropped) {
        let Ok(message) = Message::from_vec(bytes) else {
            dropped.count("malformed");
            return;
        };
        let mut state = lock(&self.state);
        let verdict = match state.waiting.get(&message.metadata.id) {
            None => Err("unexpected_id"),
            Some((_, w)) if w.server != from => Err("wrong_server"),
            Some((_, w)) if !wire::answers_question(&message, &w.name, w.rtype) => {
                Err("wrong_question")
            }
            Some(_) => Ok(()),
        };
        match verdict {
            Ok(()) => {
                if let Some((_, waiter)) = state.waiting.remove(&message.metadata.id) {
                    let _ = waiter.reply.send(Ok(message));
                }
            }
            Err(reason) => dropped.count(reason),
        }
    }

    /// Whether a replaced socket is done: no query waits on it and none
    /// can start (only its receiver still holds it; a query about to
    /// register holds it too).
    fn drained(self: &Arc<Self>) -> bool {
        lock(&self.state).retired && Arc::strong_count(self) == 1
    }
}

/// A registration; dropping it (answered, timed out or cancelled) frees
/// the ID unless another query holds it by then.
struct Waiting {
    channel: Arc<Channel>,
    id: u16,
    ticket: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = lock(&self.channel.state);
        if matches!(state.waiting.get(&self.id), Some((t, _)) if *t == self.ticket) {
            state.waiting.remove(&self.id);
        }
    }
}
