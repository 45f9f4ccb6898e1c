//! A socket's two tasks: the sender, which sends the queued queries of a
//! moment in one `sendmmsg`, and the receiver, which gives each answer to
//! its query (or drops and counts it).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{error, lock, Channel, Dropped, IDLE_CHECK, MAX_DATAGRAM, SEND_BATCH};

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
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
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
/// was replaced and has nothing left to wait for.
pub(super) async fn receive(channel: Arc<Channel>, dropped: Arc<Dropped>, stop: CancellationToken) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = tokio::time::timeout(IDLE_CHECK, channel.socket.recv_from(&mut buffer)) => received,
        };
        match received {
            Ok(Ok((length, from))) => {
                channel.deliver(buffer.get(..length).unwrap_or_default(), from, &dropped);
            }
            // An error reported on the socket: nothing to read; bounded so
            // that a persistent error cannot spin.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => {}
        }
        if channel.drained() {
            return;
        }
    }
}
