//! An abusive client of `mxscope serve`, for the memory-budget test and the
//! soak: idle and garbage connections, submissions that never end, oversized
//! messages, and large messages sent almost whole and then held. It only
//! connects to the coordinator address it is given (a loopback address the
//! harness started).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mxscope_coordinator::grpc::client::{AdminClient, ClientError};
use mxscope_coordinator::model::ScanOptions;
use mxscope_coordinator::service::ScanRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// What the coordinator answered the abuse with.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections the coordinator closed (or refused) while they were held.
    pub closed: AtomicU64,
    /// Calls refused with `RESOURCE_EXHAUSTED` or `UNAVAILABLE`.
    pub refused: AtomicU64,
    /// Calls ended with `DEADLINE_EXCEEDED`, `OUT_OF_RANGE` or a reset.
    pub cut: AtomicU64,
    /// Calls that ended some other way (an answer, `UNAUTHENTICATED`…).
    pub other: AtomicU64,
}

impl Tally {
    pub fn line(&self) -> String {
        format!(
            "{} connections closed by the coordinator, {} calls refused, {} cut, {} other",
            self.closed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.cut.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed)
        )
    }

    fn count(&self, code: Option<tonic::Code>) {
        let slot = match code {
            Some(tonic::Code::ResourceExhausted | tonic::Code::Unavailable) => &self.refused,
            Some(tonic::Code::DeadlineExceeded | tonic::Code::OutOfRange) | None => &self.cut,
            Some(_) => &self.other,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

/// How much abuse, and with which token.
#[derive(Debug, Clone)]
pub struct Abuse {
    pub addr: SocketAddr,
    pub worker_token: String,
    pub admin_token: String,
    /// TCP connections that never send a byte.
    pub idle: usize,
    /// Connections that send random bytes.
    pub garbage: usize,
    /// Submissions streamed at once, each `names` names, that never end.
    pub submissions: usize,
    pub names: usize,
    /// HTTP/2 connections × streams each sending a message of
    /// `message_bytes` almost whole, then holding it, with `held_token`
    /// (a wrong one: the coordinator must not read them at all; the worker
    /// token: the request-memory budget must hold them).
    pub held_token: String,
    pub held_connections: usize,
    pub held_streams: usize,
    pub message_bytes: usize,
    /// Messages over the size limit, sent one after the other.
    pub oversized: usize,
}

/// Run every kind of abuse at once, again and again until the returned
/// set is dropped or aborted.
pub fn start(abuse: Abuse, tally: Arc<Tally>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for i in 0..abuse.idle {
        let (a, t) = (abuse.clone(), tally.clone());
        set.spawn(async move { forever(|| idle(a.addr, t.clone()), i).await });
    }
    for i in 0..abuse.garbage {
        let (a, t) = (abuse.clone(), tally.clone());
        set.spawn(async move { forever(|| garbage(a.addr, i, t.clone()), i).await });
    }
    for i in 0..abuse.submissions {
        let (a, t) = (abuse.clone(), tally.clone());
        set.spawn(async move { forever(|| submission(a.clone(), i, t.clone()), i).await });
    }
    for i in 0..abuse.held_connections {
        let (a, t) = (abuse.clone(), tally.clone());
        set.spawn(async move { forever(|| held(a.clone(), t.clone()), i).await });
    }
    if abuse.oversized > 0 {
        let (a, t) = (abuse.clone(), tally.clone());
        set.spawn(async move { forever(|| oversized(a.clone(), t.clone()), 0).await });
    }
    set
}

/// Run `attempt` again whenever it ends, with a short pause.
async fn forever<F, Fut>(mut attempt: F, seed: usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Spread the first attempts over a second.
    tokio::time::sleep(Duration::from_millis((seed % 100) as u64 * 10)).await;
    loop {
        attempt().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn idle(addr: SocketAddr, tally: Arc<Tally>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    // Held, never answering the server's SETTINGS, until the coordinator
    // closes it.
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    tally.closed.fetch_add(1, Ordering::Relaxed);
}

async fn garbage(addr: SocketAddr, seed: usize, tally: Arc<Tally>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let mut x = seed as u64 | 1;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let _ = stream.write_all(&bytes).await;
    let mut sink = vec![0u8; 4096];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    tally.closed.fetch_add(1, Ordering::Relaxed);
}

async fn submission(abuse: Abuse, seed: usize, tally: Arc<Tally>) {
    let url = format!("http://{}", abuse.addr);
    let Ok(mut admin) = AdminClient::connect(&url, Some(&abuse.admin_token), None).await else {
        return;
    };
    let chunks: Vec<Vec<String>> = (0..abuse.names)
        .map(|i| format!("abuse{seed}-{i}.flood.test"))
        .collect::<Vec<_>>()
        .chunks(10_000)
        .map(<[String]>::to_vec)
        .collect();
    // The names, then nothing: the stream never ends.
    let stream =
        tokio_stream::StreamExt::chain(tokio_stream::iter(chunks), tokio_stream::pending());
    let request = ScanRequest {
        name: format!("abuse-{seed}"),
        labels: Default::default(),
        vantages: vec!["abuse".into()],
        options: ScanOptions::default(),
        skip_invalid: true,
    };
    let result = admin.submit_stream(request, stream).await;
    match result {
        Err(ClientError::Status(status)) => tally.count(Some(status.code())),
        Err(_) => tally.count(None),
        Ok(_) => tally.count(Some(tonic::Code::Ok)),
    }
}

/// A gRPC frame header announcing `len` bytes.
fn header(len: usize) -> Bytes {
    let mut h = vec![0u8];
    h.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    Bytes::from(h)
}

fn grpc_request(abuse: &Abuse, path: &str, token: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{path}", abuse.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .expect("a request")
}

async fn held(abuse: Abuse, tally: Arc<Tally>) {
    let Ok(tcp) = TcpStream::connect(abuse.addr).await else {
        return;
    };
    let Ok((client, connection)) = h2::client::handshake(tcp).await else {
        tally.closed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let streams = async {
        let mut streams = JoinSet::new();
        for _ in 0..abuse.held_streams {
            let Ok(mut client) = client.clone().ready().await else {
                break;
            };
            let request = grpc_request(
                &abuse,
                "/mxscope.v1.WorkerService/ReportResults",
                &abuse.held_token,
            );
            let Ok((response, send)) = client.send_request(request, false) else {
                break;
            };
            let (bytes, tally) = (abuse.message_bytes, tally.clone());
            streams.spawn(async move {
                // All but the last 1 KiB of the message, then hold it.
                let code = tokio::select! {
                    () = send_almost(send, bytes) => None,
                    answer = response => answer.ok().and_then(|a| grpc_status(a.headers())),
                };
                tally.count(code);
            });
        }
        while streams.join_next().await.is_some() {}
    };
    // The connection is driven here: when this task is aborted, it closes.
    tokio::select! {
        () = streams => {}
        _ = connection => {}
    }
}

/// The gRPC status of an answer that ended in its headers.
fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let code: i32 = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(tonic::Code::from_i32(code))
}

/// Send `len - 1 KiB` of a message announcing `len` bytes, as the window
/// allows; then hold the stream open until the server ends it.
async fn send_almost(mut send: h2::SendStream<Bytes>, len: usize) {
    static CHUNK: [u8; 16 * 1024] = [0x5a; 16 * 1024];
    if send.send_data(header(len), false).is_err() {
        return;
    }
    let mut left = len.saturating_sub(1024);
    while left > 0 {
        send.reserve_capacity(left.min(CHUNK.len()));
        let Some(Ok(n)) = std::future::poll_fn(|cx| send.poll_capacity(cx)).await else {
            return;
        };
        let n = n.min(left);
        if send
            .send_data(Bytes::from_static(&CHUNK[..n]), false)
            .is_err()
        {
            return;
        }
        left -= n;
    }
    // Hold: the stream ends when the server resets it.
    let _ = std::future::poll_fn(|cx| send.poll_reset(cx)).await;
}

async fn oversized(abuse: Abuse, tally: Arc<Tally>) {
    for _ in 0..abuse.oversized {
        let Ok(tcp) = TcpStream::connect(abuse.addr).await else {
            return;
        };
        let Ok((client, connection)) = h2::client::handshake(tcp).await else {
            return;
        };
        let call = async {
            let mut client = client.ready().await.ok()?;
            let request = grpc_request(
                &abuse,
                "/mxscope.v1.WorkerService/ReportResults",
                &abuse.worker_token,
            );
            let (response, send) = client.send_request(request, false).ok()?;
            tokio::select! {
                () = send_almost(send, 64 << 20) => None,
                answer = response => answer.ok().and_then(|a| grpc_status(a.headers())),
            }
        };
        let code = tokio::select! {
            code = call => code,
            _ = connection => None,
        };
        tally.count(code);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
