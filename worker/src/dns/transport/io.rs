//! A socket's two tasks: the sender, which sends the queued queries of a
//! moment in one `sendmmsg`, and the receiver, which reads the answers
//! waiting in one `recvmmsg` and gives each to its query (or drops and
//! counts it).

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{error, lock, Channel, Dropped, IDLE_CHECK, MAX_DATAGRAM, RECEIVE_BATCH, SEND_BATCH};

/// A query's datagram, queued for its socket's next batch.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) id: u16,
    pub(super) ticket: u64,
    pub(super) bytes: Arc<[u8]>,
    pub(super) to: SocketAddr,
}

impl Channel {
    /// Queue `outgoing` for the sender's next batch.
    pub(super) fn send(&self, outgoing: Outgoing) {
        let mut outbox = lock(&self.outbox);
        outbox.push(outgoing);
        if outbox.len() == 1 {
            self.queued.notify_one();
        }
    }

    /// `outgoing` could not be sent: its query (if it still waits) fails.
    fn failed(&self, outgoing: &Outgoing, why: &std::io::Error) {
        let mut state = lock(&self.state);
        if matches!(state.waiting.get(&outgoing.id), Some((t, _)) if *t == outgoing.ticket) {
            if let Some((_, waiter)) = state.waiting.remove(&outgoing.id) {
                let _ = waiter
                    .reply
                    .send(Err(error(format!("sending the query: {why}"))));
            }
        }
    }

    /// Send `batch`, [`SEND_BATCH`] datagrams a call; a datagram the kernel
    /// refuses fails its query, the others go on.
    async fn send_all(&self, batch: &[Outgoing]) {
        let mut rest = batch;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(SEND_BATCH)];
            let sent = self
                .socket
                .async_io(Interest::WRITABLE, || sendmmsg(&self.socket, chunk))
                .await;
            match sent {
                Ok(n) => rest = &rest[n.clamp(1, chunk.len())..],
                Err(why) => {
                    self.failed(&rest[0], &why);
                    rest = &rest[1..];
                }
            }
        }
    }
}

/// The sender of one socket: each time queries are queued, it lets the
/// queries that are ready at the same moment join, then sends them all.
/// Until the resolver is dropped, or the channel is gone.
pub(super) async fn send(channel: Weak<Channel>, queued: Arc<Notify>, stop: CancellationToken) {
    let mut batch = Vec::new();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            () = queued.notified() => {}
        }
        // The other tasks made ready with this one queue their queries now.
        tokio::task::yield_now().await;
        let Some(channel) = channel.upgrade() else {
            return;
        };
        loop {
            std::mem::swap(&mut batch, &mut *lock(&channel.outbox));
            if batch.is_empty() {
                break;
            }
            channel.send_all(&batch).await;
            batch.clear();
        }
    }
}

/// One `sendmmsg(2)` of `batch` (at most [`SEND_BATCH`] datagrams) on
/// `socket`: how many were sent, or why the first was not.
fn sendmmsg(socket: &UdpSocket, batch: &[Outgoing]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let addresses: Vec<socket2::SockAddr> = batch
        .iter()
        .map(|o| socket2::SockAddr::from(o.to))
        .collect();
    let mut iovecs: Vec<libc::iovec> = batch
        .iter()
        .map(|o| libc::iovec {
            iov_base: o.bytes.as_ptr() as *mut libc::c_void,
            iov_len: o.bytes.len(),
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .zip(&addresses)
        .map(|(iovec, address)| {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = address.as_ptr() as *mut libc::c_void;
            header.msg_namelen = address.len();
            header.msg_iov = iovec;
            header.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            }
        })
        .collect();
    let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
    // SAFETY: every header points into `addresses`, `iovecs` and the
    // batch's bytes, all alive and unmoved until the call returns; the
    // kernel reads them and writes only `msg_len`.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            count,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// The receiver of one socket: until the resolver is dropped, or the socket
/// was replaced and has nothing left to wait for. Each wake-up reads every
/// answer waiting, up to [`RECEIVE_BATCH`] a call (`recvmmsg`).
pub(super) async fn receive(channel: Arc<Channel>, dropped: Arc<Dropped>, stop: CancellationToken) {
    let mut inbox = Inbox::new();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    // One timer for the idle check, not one per answer.
    let idle = tokio::time::sleep(IDLE_CHECK);
    tokio::pin!(idle);
    loop {
        let received = tokio::select! {
            () = &mut stopped => return,
            () = &mut idle => {
                idle.as_mut().reset(tokio::time::Instant::now() + IDLE_CHECK);
                None
            }
            received = channel
                .socket
                .async_io(Interest::READABLE, || inbox.receive(&channel.socket)) => Some(received),
        };
        match received {
            Some(Ok(count)) => {
                for (bytes, from) in inbox.datagrams(count) {
                    channel.deliver(bytes, from, &dropped);
                }
            }
            // An error reported on the socket: nothing to read; bounded so
            // that a persistent error cannot spin.
            Some(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            None => {}
        }
        if channel.drained() {
            return;
        }
    }
}

/// Where one `recvmmsg(2)` puts its datagrams: [`RECEIVE_BATCH`] buffers of
/// [`MAX_DATAGRAM`] bytes and their senders. The buffers are never zeroed:
/// of memory fresh from the system, the pages no datagram reached are never
/// touched (answers without EDNS are at most 512 bytes). At worst — reused
/// memory, or large datagrams from anyone who can reach the port — 1 MiB
/// per socket.
struct Inbox {
    buffers: Box<[MaybeUninit<u8>]>,
    senders: [libc::sockaddr_storage; RECEIVE_BATCH],
    /// Each datagram's length and its sender's address length.
    lengths: [(usize, libc::socklen_t); RECEIVE_BATCH],
}

impl Inbox {
    fn new() -> Self {
        Self {
            buffers: Box::new_uninit_slice(RECEIVE_BATCH * MAX_DATAGRAM),
            // SAFETY: sockaddr_storage is plain data; all-zero is valid.
            senders: unsafe { std::mem::zeroed() },
            lengths: [(0, 0); RECEIVE_BATCH],
        }
    }

    /// One `recvmmsg` without waiting: how many datagrams it read, or why
    /// none (`WouldBlock` when none waits).
    fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let base = self.buffers.as_mut_ptr();
        let mut iovecs: [libc::iovec; RECEIVE_BATCH] = std::array::from_fn(|i| libc::iovec {
            // SAFETY: slot i lies within the buffers (RECEIVE_BATCH slots).
            iov_base: unsafe { base.add(i * MAX_DATAGRAM) }.cast(),
            iov_len: MAX_DATAGRAM,
        });
        let senders = self.senders.as_mut_ptr();
        let mut headers: [libc::mmsghdr; RECEIVE_BATCH] = std::array::from_fn(|i| {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            // SAFETY: i < RECEIVE_BATCH, the length of both arrays.
            header.msg_name = unsafe { senders.add(i) }.cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            }
        });
        // SAFETY: every header points into `iovecs`, `self.buffers` and
        // `self.senders`, alive and unmoved until the call returns; the
        // kernel writes at most each iovec's length and each name's size.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                RECEIVE_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let count = (received as usize).min(RECEIVE_BATCH);
        for (length, header) in self.lengths.iter_mut().zip(&headers).take(count) {
            *length = (
                (header.msg_len as usize).min(MAX_DATAGRAM),
                header.msg_hdr.msg_namelen,
            );
        }
        Ok(count)
    }

    /// The first `count` datagrams the last [`Self::receive`] read, each
    /// with its sender (one whose sender is not an IP address, which a UDP
    /// socket never reports, is skipped).
    fn datagrams(&self, count: usize) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.senders
            .iter()
            .zip(&self.lengths)
            .enumerate()
            .take(count.min(RECEIVE_BATCH))
            .filter_map(|(i, (sender, &(length, name_length)))| {
                // SAFETY: the kernel wrote `length` (at most MAX_DATAGRAM)
                // bytes at the start of slot i in the last receive.
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        self.buffers.as_ptr().add(i * MAX_DATAGRAM).cast::<u8>(),
                        length,
                    )
                };
                let mut storage = socket2::SockAddrStorage::zeroed();
                // SAFETY: the storage is a sockaddr_storage (repr
                // transparent), and the kernel wrote a socket address of
                // `name_length` bytes into `sender`.
                let address = unsafe {
                    *storage.view_as::<libc::sockaddr_storage>() = *sender;
                    socket2::SockAddr::new(storage, name_length)
                };
                Some((bytes, address.as_socket()?))
            })
    }
}
