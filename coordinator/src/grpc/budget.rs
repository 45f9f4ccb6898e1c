//! The request-memory budget ([`ServerLimits::request_memory`]): a
//! request message being received holds its whole announced length (tonic's
//! decoder reserves it on reading the header) until it is whole and taken;
//! a frame that finds the budget spent fails its call with
//! `RESOURCE_EXHAUSTED` (a worker keeps the batch and retries), and a message
//! not whole within [`ServerLimits::message_within`] of its first byte fails
//! with `DEADLINE_EXCEEDED`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use mxscope_common::wire::client::MAX_MESSAGE_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::body::Body;
use tonic::Status;
use tower::util::MapRequestLayer;

use super::limits::ServerLimits;

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
