//! Domain lists being submitted, staged on disk: names arrive in chunks,
//! are sorted and deduplicated in bounded runs written to files in the
//! data directory (`staging/<submission>/run-<n>`), and stream back merged,
//! sorted and each once. Memory holds one run, whatever the list's length.
//! (Staging in a sled tree was tried first: sled kept a node copy per
//! insert until the next flush, 3 GiB for a million names.) A submission's
//! files go when it ends; files left by a crash go at [`Store::open`]
//! (super::Store::open): nothing of them was visible.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Lines, Write};
use std::path::{Path, PathBuf};

use super::{Result, Store, StoreError};

/// Folder of the staged lists inside the data directory.
const STAGING: &str = "staging";
/// Names held in memory before they are written out as a sorted run…
pub const RUN_NAMES: usize = 500_000;
/// …or bytes of them (each name's text and its `String`), whichever comes
/// first: a submission's share of the memory budget.
pub(super) const RUN_BYTES: usize = 32 << 20;

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Dir {
        path: path.to_path_buf(),
        source,
    }
}

/// The staged domains of one submission.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    buffer: Vec<String>,
    /// Bytes of `buffer` (see [`RUN_BYTES`]).
    buffered: usize,
    runs: Vec<PathBuf>,
    run_names: usize,
    /// Its files are gone ([`Self::discard`]); else dropping removes them.
    discarded: bool,
}

impl Store {
    /// A fresh staging area for submission `id` (unique within this process).
    pub fn staging(&self, id: &str) -> Result<Staging> {
        self.staging_with_runs(id, RUN_NAMES)
    }

    /// [`Self::staging`] with runs of `run_names` names (tests).
    pub fn staging_with_runs(&self, id: &str, run_names: usize) -> Result<Staging> {
        let dir = self.dir.join(STAGING).join(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        Ok(Staging {
            dir,
            buffer: Vec::new(),
            buffered: 0,
            runs: Vec::new(),
            run_names: run_names.max(1),
            discarded: false,
        })
    }

    /// Removes every staged list (at open: no submission survives a restart).
    pub(super) fn drop_staging(&self) -> Result<bool> {
        let dir = self.dir.join(STAGING);
        if !dir.exists() {
            return Ok(false);
        }
        std::fs::remove_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        Ok(true)
    }
}

impl Staging {
    /// Adds domains (A-labels, no line breaks); duplicates merge later.
    pub fn insert(&mut self, domains: &[&str]) -> Result<()> {
        for domain in domains {
            self.buffer.push((*domain).to_string());
            self.buffered += domain.len() + size_of::<String>();
            if self.buffer.len() >= self.run_names || self.buffered >= RUN_BYTES {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Writes the buffer out as one sorted run without duplicates.
    fn spill(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.buffered = 0;
        self.buffer.sort_unstable();
        self.buffer.dedup();
        let path = self.dir.join(format!("run-{}", self.runs.len()));
        let file = File::create(&path).map_err(|e| io_error(&path, e))?;
        let mut out = BufWriter::new(file);
        for name in self.buffer.drain(..) {
            out.write_all(name.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| io_error(&path, e))?;
        }
        out.flush().map_err(|e| io_error(&path, e))?;
        self.runs.push(path);
        Ok(())
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty() && self.runs.is_empty()
    }

    /// The staged domains, sorted, each once (a merge of the runs).
    pub fn domains(&mut self) -> Result<Merged> {
        self.spill()?;
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::with_capacity(self.runs.len());
        for path in &self.runs {
            let file = File::open(path).map_err(|e| io_error(path, e))?;
            let mut lines = BufReader::new(file).lines();
            if let Some(first) = lines.next() {
                let first = first.map_err(|e| io_error(path, e))?;
                heap.push(Reverse((first, readers.len())));
            }
            readers.push((path.clone(), lines));
        }
        Ok(Merged {
            readers,
            heap,
            last: None,
        })
    }

    /// Deletes the staged files.
    pub fn discard(mut self) -> Result<()> {
        self.discarded = true;
        std::fs::remove_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))
    }
}

impl Drop for Staging {
    /// A staging area dropped unfinished — a submission refused, cut off,
    /// or its call cancelled while a chunk was being staged — leaves
    /// nothing behind. Blocking (file removal): drop it off async threads.
    fn drop(&mut self) {
        if self.discarded {
            return;
        }
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(dir = %self.dir.display(), error = %e,
                "dropping a staged list failed (it goes at the next start)"),
        }
    }
}

/// The merge of a staging area's runs: sorted, each name once.
#[derive(Debug)]
pub struct Merged {
    readers: Vec<(PathBuf, Lines<BufReader<File>>)>,
    heap: BinaryHeap<Reverse<(String, usize)>>,
    last: Option<String>,
}

impl Iterator for Merged {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Reverse((name, run)) = self.heap.pop()?;
            if let Some((path, lines)) = self.readers.get_mut(run) {
                match lines.next() {
                    Some(Ok(next)) => self.heap.push(Reverse((next, run))),
                    Some(Err(e)) => return Some(Err(io_error(path, e))),
                    None => {}
                }
            }
            if self.last.as_deref() == Some(name.as_str()) {
                continue;
            }
            self.last = Some(name.clone());
            return Some(Ok(name));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_merge_sorted_and_each_name_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::Store::open_with_cache(dir.path(), 1 << 20).unwrap();
        // Runs of 3 names: duplicates within and across runs.
        let mut staging = store.staging_with_runs("u1", 3).unwrap();
        assert!(staging.is_empty());
        staging
            .insert(&["c.example", "a.example", "c.example", "b.example"])
            .unwrap();
        staging
            .insert(&["a.example", "d.example", "b.example"])
            .unwrap();
        let names: Vec<String> = staging.domains().unwrap().map(Result::unwrap).collect();
        assert_eq!(names, ["a.example", "b.example", "c.example", "d.example"]);
        let staged = dir.path().join("staging").join("u1");
        assert!(staged.exists());
        staging.discard().unwrap();
        assert!(!staged.exists());
        // A crash leaves files: the next open removes them.
        let mut left = store.staging("u2").unwrap();
        left.insert(&["a.example"]).unwrap();
        left.domains().unwrap();
        drop(left);
        drop(store);
        let _store = super::Store::open_with_cache(dir.path(), 1 << 20).unwrap();
        assert!(!dir.path().join("staging").exists());
    }
}
