//! The one hello-and-read driver: write a hello on a stream that has just
//! received STARTTLS's `220`, then read until the caller's sans-IO reader
//! decides, within one absolute deadline and a byte cap. The version
//! probes, the first flight and the TLS depth's hellos all go through it.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Why no decision came.
#[derive(Debug)]
pub enum ReadEnd {
    /// The deadline passed (writing or reading).
    Timeout,
    /// The hello could not be written.
    WriteFailed(std::io::Error),
    /// The peer closed the connection after `after` bytes.
    Closed { after: usize },
    /// A read failed after `after` bytes (a reset before any byte included).
    ReadFailed { after: usize, error: std::io::Error },
    /// `max` bytes came without a decision.
    Full { after: usize },
}

impl ReadEnd {
    /// A reset or abort before the first byte: the usual way a server
    /// refuses a hello it will not answer.
    pub fn is_reset_before_answer(&self) -> bool {
        matches!(self, Self::ReadFailed { after: 0, error } if matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ))
    }
}

/// Write `hello`, then read (in chunks of `chunk` bytes, at most `max` in
/// all) until `decide` returns a value for the bytes received so far.
pub async fn send_and_read<S, T>(
    stream: &mut S,
    hello: &[u8],
    deadline: Instant,
    max: usize,
    chunk: usize,
    mut decide: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, ReadEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write = async {
        stream.write_all(hello).await?;
        stream.flush().await
    };
    match tokio::time::timeout_at(deadline, write).await {
        Err(_) => return Err(ReadEnd::Timeout),
        Ok(Err(e)) => return Err(ReadEnd::WriteFailed(e)),
        Ok(Ok(())) => {}
    }
    let mut received: Vec<u8> = Vec::with_capacity(chunk.min(max));
    let mut buffer = vec![0u8; chunk];
    loop {
        let room = max.saturating_sub(received.len()).min(buffer.len());
        let Some(window) = buffer.get_mut(..room).filter(|w| !w.is_empty()) else {
            return Err(ReadEnd::Full {
                after: received.len(),
            });
        };
        let n = match tokio::time::timeout_at(deadline, stream.read(window)).await {
            Err(_) => return Err(ReadEnd::Timeout),
            Ok(Ok(0)) => {
                return Err(ReadEnd::Closed {
                    after: received.len(),
                })
            }
            Ok(Ok(n)) => n,
            Ok(Err(error)) => {
                return Err(ReadEnd::ReadFailed {
                    after: received.len(),
                    error,
                })
            }
        };
        received.extend_from_slice(buffer.get(..n).unwrap_or_default());
        if let Some(decided) = decide(&received) {
            return Ok(decided);
        }
    }
}
