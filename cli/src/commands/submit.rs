//! `mxscope submit`: a domain list becomes a scan on a running coordinator.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use mxscope_common::cli::args::{required, COORDINATOR};
use mxscope_coordinator::service::ScanRequest;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::list::ListReader;
use super::{connect, options};

use crate::{CoordinatorArgs, ScanMetaArgs, ScanOptionArgs};

/// Chunks read ahead of the submission (each at most
/// [`super::list::CHUNK_LINES`] lines and about [`super::list::CHUNK_BYTES`]).
const LIST_CHUNKS_AHEAD: usize = 2;

#[derive(Debug, Args)]
#[command(
    mut_arg(COORDINATOR, required),
    after_help = "Example:\n  mxscope submit it-domains.txt --name it-2026-11 --label country=IT \\\n    \
    --vantage eu-1 --vantage us-1 --coordinator https://coord:7443 --token-file admin.token\n\n\
    An invalid line refuses the whole list, naming the line (unless --skip-invalid)."
)]
pub(crate) struct SubmitArgs {
    /// Domain list (one per line, `#` comments), or `-` for standard input.
    list: PathBuf,
    /// Vantage label the scan must be measured from; may be repeated.
    #[arg(long = "vantage", value_name = "LABEL", required = true)]
    vantages: Vec<String>,
    #[command(flatten)]
    meta: ScanMetaArgs,
    #[command(flatten)]
    probe: ScanOptionArgs,
    #[command(flatten)]
    coordinator: CoordinatorArgs,
}

pub(crate) async fn run(args: SubmitArgs) -> anyhow::Result<()> {
    let mut list = ListReader::open(&args.list)?;
    let reading = || format!("reading domain list {}", args.list.display());
    let first = list.next_chunk().with_context(reading)?;
    if first.is_empty() {
        bail!("{} is empty", args.list.display());
    }
    let mut client = connect(&args.coordinator).await?;
    let name = args
        .meta
        .name
        .clone()
        .unwrap_or_else(|| list_name(&args.list));
    let options = options(&args.probe)?;
    let (chunks, mut read) = stream_list(list, first)?;
    let request = ScanRequest {
        name,
        labels: args.meta.labels(),
        vantages: args.vantages.clone(),
        options,
        skip_invalid: args.meta.skip_invalid,
    };
    let submit = client.submit_stream(request, chunks);
    tokio::pin!(submit);
    // Until the reader has sent the last chunk, a read error ends the
    // command: the submission is dropped unfinished, so the coordinator
    // stores nothing.
    let mut read_all = false;
    let submitted = loop {
        tokio::select! {
            submitted = &mut submit => {
                break submitted.with_context(|| format!("submitting {}", args.list.display()))?;
            }
            result = &mut read, if !read_all => match result {
                Ok(Ok(())) => read_all = true,
                Ok(Err(e)) => {
                    return Err(e).with_context(|| format!("{}; nothing was submitted", reading()));
                }
                Err(_) => bail!("{} stopped; nothing was submitted", reading()),
            },
        }
    };
    for skipped in &submitted.skipped {
        eprintln!("skipped {skipped}");
    }
    println!(
        "scan {} submitted: {} domains ({} duplicates merged, {} invalid lines skipped)",
        submitted.scan_id,
        submitted.domains,
        submitted.duplicates,
        submitted.skipped.len()
    );
    Ok(())
}

/// What the list reader sends.
enum Piece {
    Lines(Vec<String>),
    /// Every line was sent: the list ends here.
    End,
}

/// Chunks to submit: a thread reads the list (from `first` on) into a
/// channel of [`LIST_CHUNKS_AHEAD`] chunks, so at most that many wait in
/// memory. The stream ends only after the last line; a reader that fails
/// leaves it waiting forever (and says why on the returned receiver), so a
/// failed read can never look like the end of a shorter list.
fn stream_list(
    mut list: ListReader,
    first: Vec<String>,
) -> anyhow::Result<(
    impl tokio_stream::Stream<Item = Vec<String>> + Send + 'static,
    oneshot::Receiver<std::io::Result<()>>,
)> {
    let (tx, rx) = mpsc::channel(LIST_CHUNKS_AHEAD);
    let (done_tx, done_rx) = oneshot::channel();
    // A thread, not the blocking pool: a read of standard input that the
    // command no longer waits for must not hold up its exit.
    std::thread::Builder::new()
        .name("list-reader".into())
        .spawn(move || {
            let send = |piece| tx.blocking_send(piece).is_ok();
            let mut result = Ok(());
            let mut chunk = first;
            loop {
                if chunk.is_empty() {
                    send(Piece::End);
                    break;
                }
                // A closed channel: the submission ended (refused, or done).
                if !send(Piece::Lines(chunk)) {
                    break;
                }
                match list.next_chunk() {
                    Ok(next) => chunk = next,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            // The channel closes before the result is told.
            drop(tx);
            let _ = done_tx.send(result);
        })
        .context("starting the list reader")?;
    let chunks = ReceiverStream::new(rx)
        .chain(tokio_stream::pending())
        .map_while(|piece| match piece {
            Piece::Lines(lines) => Some(lines),
            Piece::End => None,
        });
    Ok((chunks, done_rx))
}

/// A scan name from a list's path.
pub(crate) fn list_name(path: &std::path::Path) -> String {
    if path == std::path::Path::new("-") {
        return "stdin".into();
    }
    path.file_stem()
        .map_or_else(|| "scan".into(), |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor, Read};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::commands::list::CHUNK_LINES;

    /// A disk that fails after `good` bytes.
    struct Failing(Cursor<Vec<u8>>);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("the disk failed")),
                n => Ok(n),
            }
        }
    }

    fn poll_once<S: tokio_stream::Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
        let mut cx = Context::from_waker(Waker::noop());
        std::pin::Pin::new(stream).poll_next(&mut cx)
    }

    #[tokio::test]
    async fn a_read_error_never_looks_like_the_end_of_the_list() {
        let text = "d.example\n".repeat(CHUNK_LINES + 5);
        let reader = BufReader::new(Failing(Cursor::new(text.into_bytes())));
        let mut list = ListReader::from_reader(Box::new(reader));
        let first = list.next_chunk().expect("a whole first chunk");
        let (chunks, done) = stream_list(list, first).expect("reader");
        let mut chunks = pin!(chunks);
        assert_eq!(chunks.next().await.map(|c| c.len()), Some(CHUNK_LINES));
        let failed = done.await.expect("the reader says how it ended");
        assert!(failed.is_err(), "{failed:?}");
        // The five lines before the failure are never sent as a last
        // chunk, and the stream does not end: it waits to be dropped.
        assert!(poll_once(&mut chunks).is_pending());
    }

    #[tokio::test]
    async fn a_list_that_reads_whole_ends_the_stream() {
        let text = "d.example\n".repeat(CHUNK_LINES + 5);
        let mut list = ListReader::from_reader(Box::new(Cursor::new(text.into_bytes())));
        let first = list.next_chunk().expect("first chunk");
        let (chunks, done) = stream_list(list, first).expect("reader");
        let sizes: Vec<usize> = chunks.map(|c| c.len()).collect().await;
        assert_eq!(sizes, [CHUNK_LINES, 5]);
        assert!(done.await.expect("told").is_ok());
    }
}
