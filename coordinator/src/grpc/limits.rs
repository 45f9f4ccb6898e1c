//! What clients can make the coordinator hold, one and all together:
//! connections, the bytes of request messages being received, and how long
//! a silent connection or a half-sent message may hold them. These, with
//! the HTTP/2 settings below and the submission caps of the service, are
//! the terms of the memory budget that docs/guide.md ("Memory budget")
//! adds up.
//!
//! - [`gate`]: accepts connections up to [`ServerLimits::max_connections`]
//!   (then a new one takes the place of the oldest that has not yet sent
//!   its first [`PREFACE_BYTES`]; with none such, it is closed at once and
//!   counted) and closes one that has not sent them within
//!   [`ServerLimits::first_bytes_within`].
//! - [`budget_layer`]: a request message being received holds its whole
//!   announced length (tonic's decoder reserves it on reading the header)
//!   of [`ServerLimits::request_memory`] until it is whole and taken; a frame that finds the budget spent fails its call
//!   with `RESOURCE_EXHAUSTED` (a worker keeps the batch and retries), and a
//!   message not whole within [`ServerLimits::message_within`] of its first
//!   byte fails with `DEADLINE_EXCEEDED`.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use mxscope_common::client::MAX_MESSAGE_BYTES;
use mxscope_common::telemetry::warn_again;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::Status;
use tower::util::MapRequestLayer;

/// HTTP/2 streams one connection may have open at once.
pub const STREAMS_PER_CONNECTION: u32 = 64;
/// Bytes a connection may send before the coordinator takes them (HTTP/2
/// connection flow-control window), and per stream.
pub const CONNECTION_WINDOW: u32 = 512 * 1024;
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// Largest header block of one request (gRPC metadata is a few hundred bytes).
pub const HEADER_LIST_BYTES: u32 = 16 * 1024;
/// The HTTP/2 client preface (24 bytes) and a frame header: what a client
/// sends first, TLS or not (a ClientHello is longer).
pub const PREFACE_BYTES: usize = 24 + 9;

/// The limits of one gRPC server ([`super::server::serve`]).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections held at once (idle, handshaking or busy).
    pub max_connections: usize,
    /// Bytes of request messages being received, all connections together.
    pub request_memory: usize,
    /// A connection that has not sent [`PREFACE_BYTES`] by then is closed.
    pub first_bytes_within: Duration,
    /// A request message must arrive whole within this of its first byte.
    pub message_within: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1_024,
            request_memory: 256 << 20,
            first_bytes_within: Duration::from_secs(10),
            message_within: Duration::from_secs(60),
        }
    }
}

impl ServerLimits {
    /// The most the connections themselves can hold (flow-control windows
    /// and header blocks of every stream), before any message is taken.
    pub fn connections_bytes(&self) -> usize {
        let per = CONNECTION_WINDOW as usize
            + STREAMS_PER_CONNECTION as usize * HEADER_LIST_BYTES as usize;
        self.max_connections.saturating_mul(per)
    }
}

/// Accept connections from `listener` within `limits` until the returned
/// stream is dropped (the accept loop then ends). At the cap, a new
/// connection takes the place of the oldest one that has not yet sent its
/// first [`PREFACE_BYTES`] (idle and garbage connections cannot lock
/// clients out); with none such, it is closed at once.
pub fn gate(listener: TcpListener, limits: &ServerLimits) -> ReceiverStream<io::Result<Gated>> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let within = limits.first_bytes_within;
    let most = limits.max_connections;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let (mut refused, mut failed) = (None, None);
        // Connections in accept order that may not have sent their preface yet.
        let mut unproven: VecDeque<Arc<Proof>> = VecDeque::new();
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let permit = match permits.clone().try_acquire_owned() {
                        Ok(permit) => Some(permit),
                        Err(_) => evict_oldest(&mut unproven, &permits).await,
                    };
                    let Some(permit) = permit else {
                        drop(stream);
                        crate::metrics::connection_refused();
                        if warn_again(&mut refused) {
                            tracing::warn!(%peer, "{most} connections are open (--max-connections) and all have sent requests: closing new ones until some end");
                        }
                        continue;
                    };
                    // gRPC answers are small writes; Nagle would hold them back.
                    let _ = stream.set_nodelay(true);
                    crate::metrics::connection_opened();
                    while unproven.front().is_some_and(|p| p.settled()) {
                        unproven.pop_front();
                    }
                    let proof = Arc::new(Proof::default());
                    unproven.push_back(proof.clone());
                    if tx
                        .send(Ok(Gated::new(stream, permit, within, proof)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(error) => {
                    // Out of descriptors, or an aborted handshake: never a busy loop.
                    if warn_again(&mut failed) {
                        tracing::warn!(%error, "accepting a connection failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Close the oldest connection still without its preface and take its
/// permit (within a second); `None` when every connection has sent one.
async fn evict_oldest(
    unproven: &mut VecDeque<Arc<Proof>>,
    permits: &Arc<Semaphore>,
) -> Option<OwnedSemaphorePermit> {
    while let Some(oldest) = unproven.pop_front() {
        if oldest.settled() {
            continue;
        }
        oldest.evict.cancel();
        crate::metrics::connection_refused();
        let waited = tokio::time::timeout(Duration::from_secs(1), permits.clone().acquire_owned());
        return waited.await.ok().and_then(Result::ok);
    }
    None
}

/// Whether a connection has sent its preface (or ended), and how to close
/// it while it has not.
#[derive(Debug, Default)]
struct Proof {
    settled: AtomicBool,
    evict: CancellationToken,
}

impl Proof {
    fn settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }
}

/// A connection before its preface: its deadline, the bytes seen so far
/// and the gate's order to make room.
type Unproven = (
    Pin<Box<Sleep>>,
    usize,
    Pin<Box<WaitForCancellationFutureOwned>>,
);

/// An accepted connection holding one of the gate's permits.
pub struct Gated {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Until the client has sent [`PREFACE_BYTES`]: its deadline, the
    /// bytes seen so far and the gate's order to make room.
    first: Option<Unproven>,
    proof: Arc<Proof>,
}

impl Gated {
    fn new(
        io: TcpStream,
        permit: OwnedSemaphorePermit,
        within: Duration,
        proof: Arc<Proof>,
    ) -> Self {
        let evicted = Box::pin(proof.evict.clone().cancelled_owned());
        Self {
            io,
            _permit: permit,
            first: Some((Box::pin(tokio::time::sleep(within)), 0, evicted)),
            proof,
        }
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.proof.settled.store(true, Ordering::Relaxed);
        crate::metrics::connection_closed();
    }
}

impl AsyncRead for Gated {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Some((deadline, seen, evicted)) = &mut this.first {
            match polled {
                Poll::Ready(Ok(())) => {
                    *seen += buf.filled().len() - before;
                    if *seen >= PREFACE_BYTES {
                        this.first = None;
                        this.proof.settled.store(true, Ordering::Relaxed);
                    }
                }
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request in time",
                    )));
                }
                Poll::Pending if evicted.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "closed for a newer connection: --max-connections were open",
                    )));
                }
                _ => {}
            }
        }
        polled
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Connected for Gated {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// The layer that puts every request body under the shared budget.
pub fn budget_layer(
    limits: &ServerLimits,
) -> MapRequestLayer<impl Fn(http::Request<Body>) -> http::Request<Body> + Clone + Send + Sync> {
    let budget = Arc::new(Semaphore::new(limits.request_memory));
    let capacity = limits.request_memory;
    let within = limits.message_within;
    MapRequestLayer::new(move |request: http::Request<Body>| {
        let budget = budget.clone();
        request.map(|inner| {
            Body::new(Budgeted {
                inner,
                budget,
                capacity,
                within,
                held: None,
                taken: 0,
                framing: Framing::default(),
                deadline: None,
            })
        })
    })
}

/// A request body whose bytes hold permits of the budget.
struct Budgeted {
    inner: Body,
    budget: Arc<Semaphore>,
    capacity: usize,
    within: Duration,
    /// One permit per byte received and not yet taken whole.
    held: Option<OwnedSemaphorePermit>,
    /// Bytes of messages made whole by the last frame: taken by the time
    /// the next frame is asked for.
    taken: usize,
    framing: Framing,
    /// While a message is partial: when it must be whole.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Budgeted {
    /// Hold `bytes` more of the budget, or the status that refuses the call.
    fn take(&mut self, bytes: usize) -> Result<(), Status> {
        if bytes > MAX_MESSAGE_BYTES + 5 {
            return Err(Status::out_of_range(format!(
                "a request message of {bytes} bytes is over the {} MiB limit",
                MAX_MESSAGE_BYTES >> 20
            )));
        }
        let n = u32::try_from(bytes).unwrap_or(u32::MAX);
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(n) else {
            crate::metrics::request_refused("memory");
            return Err(Status::resource_exhausted(format!(
                "the coordinator is receiving {} MiB of requests already \
                 (--request-memory-mib): retry later",
                self.capacity >> 20
            )));
        };
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

impl HttpBody for Budgeted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.taken > 0 {
            if let Some(held) = &mut this.held {
                drop(held.split(this.taken));
            }
            this.taken = 0;
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) {
                    let fed = this.framing.feed(data);
                    if fed.announced > 0 {
                        // The decoder reserves a message's whole length as
                        // soon as it reads its header: so does the budget.
                        if let Err(refusal) = this.take(fed.announced) {
                            return Poll::Ready(Some(Err(refusal)));
                        }
                    }
                    this.taken = fed.whole;
                    if !this.framing.partial() {
                        this.deadline = None;
                    } else if fed.started || this.deadline.is_none() {
                        this.deadline = Some(Box::pin(tokio::time::sleep(this.within)));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if let Some(deadline) = &mut this.deadline {
                    if deadline.as_mut().poll(cx).is_ready() {
                        crate::metrics::request_refused("stalled");
                        return Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                            "a request message was not whole {} s after its first byte",
                            this.within.as_secs()
                        )))));
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a gRPC message stream is: each message is a flag byte, a 4-byte
/// big-endian length and that many bytes.
/// What one frame did to a message stream.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fed {
    /// Whole sizes (header included) of the messages whose header it
    /// completed.
    announced: usize,
    /// Whole sizes of the messages it completed.
    whole: usize,
    /// Whether it left a message partial that it started.
    started: bool,
}

#[derive(Debug, Default)]
struct Framing {
    header: [u8; 5],
    header_len: usize,
    /// Payload bytes still to come of the current message.
    remaining: usize,
    /// Bytes of the current message seen so far (header included).
    partial: usize,
}

impl Framing {
    /// Walk `data`: see [`Fed`].
    fn feed(&mut self, data: &[u8]) -> Fed {
        let mut fed = Fed::default();
        let mut rest = data;
        while !rest.is_empty() {
            if self.partial == 0 {
                fed.started = true;
            }
            if self.header_len < self.header.len() {
                let take = (self.header.len() - self.header_len).min(rest.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&rest[..take]);
                self.header_len += take;
                self.partial += take;
                rest = &rest[take..];
                if self.header_len < self.header.len() {
                    break;
                }
                let [_, a, b, c, d] = self.header;
                self.remaining = u32::from_be_bytes([a, b, c, d]) as usize;
                fed.announced += self.header.len() + self.remaining;
            }
            let take = self.remaining.min(rest.len());
            self.remaining -= take;
            self.partial += take;
            rest = &rest[take..];
            if self.remaining == 0 {
                fed.whole += self.partial;
                self.partial = 0;
                self.header_len = 0;
                fed.started = false;
            }
        }
        fed
    }

    fn partial(&self) -> bool {
        self.partial > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len as usize));
        m
    }

    #[test]
    fn framing_counts_whole_messages_across_frames() {
        let mut f = Framing::default();
        let two: Vec<u8> = [message(10), message(0), message(3)].concat();
        let fed = |announced, whole, started| Fed {
            announced,
            whole,
            started,
        };
        // 15 + 5 whole, 3 bytes of the third's header: announced with the rest.
        assert_eq!(f.feed(&two[..23]), fed(20, 20, true));
        assert!(f.partial());
        assert_eq!(f.feed(&two[23..]), fed(8, 8, false));
        assert!(!f.partial());
        // A header split in two, then its payload.
        let m = message(100);
        assert_eq!(f.feed(&m[..2]), fed(0, 0, true));
        assert_eq!(f.feed(&m[2..50]), fed(105, 0, false));
        assert_eq!(f.feed(&m[50..]), fed(0, 105, false));
        assert!(!f.partial());
    }

    #[test]
    fn a_length_that_never_comes_stays_partial() {
        let mut f = Framing::default();
        let mut header = vec![0];
        header.extend_from_slice(&u32::MAX.to_be_bytes());
        let announced = 5 + u32::MAX as usize;
        assert_eq!(
            f.feed(&header),
            Fed {
                announced,
                whole: 0,
                started: true
            }
        );
        assert_eq!(f.feed(&[1; 1000]), Fed::default());
        assert!(f.partial());
    }
}
