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
//! - [`super::budget::budget_layer`]: request messages being received,
//!   within [`ServerLimits::request_memory`].

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mxscope_common::process::telemetry::warn_again;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

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
