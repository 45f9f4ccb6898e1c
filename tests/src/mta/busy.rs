//! A server that is busy at first: it answers `421` to its first sessions
//! and then hands every later connection to a real MTA (a byte-for-byte
//! proxy to Postfix), so the retried session meets real STARTTLS. Runs on a
//! runtime of its own thread, like the other fakes; bounded in time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Longest one proxied connection lives.
const MAX_CONNECTION: Duration = Duration::from_secs(120);

/// The running busy server.
#[derive(Debug)]
pub struct Busy {
    sessions: Arc<AtomicUsize>,
    _thread: std::thread::JoinHandle<()>,
}

impl Busy {
    /// Listen on `listen`; the first `refuse` sessions get `421`, the rest
    /// are proxied to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr, refuse: usize) -> anyhow::Result<Self> {
        let sessions = Arc::new(AtomicUsize::new(0));
        let counter = sessions.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("lab-busy".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::bind(listen).await {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(
                                MAX_CONNECTION,
                                session(stream, upstream, n < refuse),
                            )
                            .await;
                        });
                    }
                });
            })
            .context("spawning the busy server's thread")?;
        ready_rx
            .recv()
            .context("the busy server's thread ended before binding")??;
        Ok(Self {
            sessions,
            _thread: thread,
        })
    }

    /// Sessions accepted so far.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }
}

async fn session(mut client: TcpStream, upstream: SocketAddr, refuse: bool) -> std::io::Result<()> {
    if refuse {
        client
            .write_all(b"421 4.7.0 busy.lab.test Too many connections, try again later\r\n")
            .await?;
        return client.shutdown().await;
    }
    let mut server = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
