//! Domain list files as the `mxscope` commands read them: line by line from
//! a file or standard input, in chunks bounded in lines and bytes, so a
//! submission holds a chunk or two of a list, never the list. A line longer
//! than [`MAX_LINE`] keeps its start (made longer than any domain, so the
//! coordinator refuses it with its number) and the rest is skipped unread.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;

/// Longest line read from a domain list before it is cut (and rejected).
pub(crate) const MAX_LINE: u64 = 4096;
/// Most lines in one chunk of a submission.
pub(crate) const CHUNK_LINES: usize = 10_000;
/// Most bytes of lines in one chunk (well under the gRPC message limit,
/// whatever the lines hold).
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// A domain list being read.
pub(crate) struct ListReader {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ListReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListReader").finish_non_exhaustive()
    }
}

impl ListReader {
    /// The list at `path`, or standard input for `-`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let reader: Box<dyn BufRead + Send> = if path == Path::new("-") {
            Box::new(BufReader::new(io::stdin()))
        } else {
            let file = std::fs::File::open(path)
                .with_context(|| format!("opening domain list {}", path.display()))?;
            Box::new(BufReader::new(file))
        };
        Ok(Self::from_reader(reader))
    }

    /// The list `reader` reads.
    pub(crate) fn from_reader(reader: Box<dyn BufRead + Send>) -> Self {
        Self {
            reader,
            buf: Vec::new(),
        }
    }

    /// The next line without its line end; `None` at the end of the list.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<String>> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() != Some(&b'\n') && n as u64 == MAX_LINE {
            // Keep the overlong line's start: the coordinator rejects it with
            // its number. Skip the rest of it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut self.reader)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut rest)?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            self.buf.extend(std::iter::repeat_n(b'x', 2048));
        }
        let line = String::from_utf8_lossy(&self.buf);
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
    }

    /// The next lines: at most [`CHUNK_LINES`], and no more once they pass
    /// [`CHUNK_BYTES`]; empty at the end of the list.
    pub(crate) fn next_chunk(&mut self) -> io::Result<Vec<String>> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < CHUNK_LINES && bytes < CHUNK_BYTES {
            let Some(line) = self.next_line()? else {
                break;
            };
            bytes += line.len() + 1;
            chunk.push(line);
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &[u8]) -> ListReader {
        ListReader::from_reader(Box::new(io::Cursor::new(text.to_vec())))
    }

    #[test]
    fn lines_lose_their_ends_and_overlong_ones_are_cut() {
        let long = "a".repeat(10_000);
        let text = format!("one.example\r\ntwo.example\n{long}\nthree.example");
        let mut list = reader(text.as_bytes());
        assert_eq!(list.next_line().unwrap().as_deref(), Some("one.example"));
        assert_eq!(list.next_line().unwrap().as_deref(), Some("two.example"));
        let cut = list.next_line().unwrap().unwrap();
        assert_eq!(
            cut.len(),
            4096 + 2048,
            "kept start, made too long for a domain"
        );
        assert_eq!(list.next_line().unwrap().as_deref(), Some("three.example"));
        assert_eq!(list.next_line().unwrap(), None);
    }

    #[test]
    fn chunks_are_bounded_in_lines_and_bytes() {
        let text = "d.example\n".repeat(CHUNK_LINES + 5);
        let mut list = reader(text.as_bytes());
        assert_eq!(list.next_chunk().unwrap().len(), CHUNK_LINES);
        assert_eq!(list.next_chunk().unwrap().len(), 5);
        assert!(list.next_chunk().unwrap().is_empty());

        let line = format!("{}\n", "b".repeat(4000));
        let mut list = reader(line.repeat(600).as_bytes());
        let mut lines = 0;
        loop {
            let chunk = list.next_chunk().unwrap();
            if chunk.is_empty() {
                break;
            }
            let bytes: usize = chunk.iter().map(|l| l.len() + 1).sum();
            assert!(bytes < CHUNK_BYTES + 4096, "{bytes} bytes in a chunk");
            lines += chunk.len();
        }
        assert_eq!(lines, 600, "every line, in chunks of about a MiB");
    }
}
