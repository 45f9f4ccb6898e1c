//! sled behind a typed API: scans, tasks, results, target claims and
//! counters (DESIGN §3 "Durable before acknowledged", §7).
//!
//! No sled type leaves this module. Values are JSON (`serde_json`); keys are
//! laid out in `keys.rs`. Trees:
//!
//! | tree        | key                               | value                     |
//! |-------------|-----------------------------------|---------------------------|
//! | `meta`      | `next_scan`                       | last scan number, u64 BE  |
//! | `scans`     | scan id                           | [`ScanMeta`]              |
//! | `tasks`     | scan 0 task id                    | [`Task`]                  |
//! | `task_scan` | task id                           | scan id (index)           |
//! | `domain_pages` | scan 0 vantage 0 first domain  | a page of `DomainRecord`s ([`pages`]) |
//! | `domains`   | scan 0 vantage 0 domain           | `DomainRecord` (format 2; empty since) |
//! | `targets`   | scan 0 vantage 0 ip               | `TargetRecord`            |
//! | `claims`    | scan 0 vantage 0 ip               | empty                     |
//! | `counters`  | `d`/`t` scan                      | record count, u64 BE      |
//! | `counters`  | `v` scan 0 vantage                | `VantageTally`            |
//!
//! Submissions in progress are staged in files beside sled's
//! (`staging/`, see [`Staging`]), never in a tree. The directory's format
//! version is the file `FORMAT` ([`format`]): writers upgrade an older one,
//! everyone refuses a newer one; [`Store::open_reader`] writes nothing.
//!
//! Invariants:
//! - A scan is visible only once its meta is stored, and its meta is stored
//!   only after all its tasks are on disk; [`Store::open`] deletes tasks
//!   whose scan has no meta (an interrupted [`Store::create_scan`]).
//! - A result key is written once; its counter and its vantage's tally
//!   move in the same transaction, so counts equal distinct keys even
//!   across crashes and resends.
//! - Writes are durable only after [`Store::flush`]: acknowledge after it.
//!
//! All methods but `flush` are blocking (disk I/O; `open` waits up to
//! [`LOCK_WAIT`] for the directory's lock): async code reaches them through
//! one boundary — [`crate::service::Coordinator::blocking`] in the service,
//! the command line's `blocking` in `mxscope`.

mod claims;
mod error;
pub mod format;
mod keys;
mod pages;
mod results;
mod staging;
mod tasks;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_manual;
#[cfg(test)]
mod tests_pages;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use error::storage;

pub use error::{ErrorKind, Result, StoreError};
pub use staging::{Merged, Staging, RUN_NAMES};

/// Tasks per sled batch in [`Store::create_scan`] / [`Store::put_tasks`]:
/// bounds the memory of one batch (a resolve task holds a few hundred
/// domains).
const TASK_BATCH: usize = 256;

/// Attempts of the compare-and-swap loop of [`Store::next_scan_id`].
const CAS_ATTEMPTS: usize = 1_000;

const NEXT_SCAN: &[u8] = b"next_scan";

/// The coordinator's durable state. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Store {
    dir: Arc<Path>,
    /// sled's handles, swapped by [`Store::reopen`] (`None` while it runs).
    handles: Arc<std::sync::RwLock<Option<Arc<Handles>>>>,
    cache_bytes: u64,
    flusher: Arc<Flusher>,
    /// Domain records are in `domain_pages` (format 3); false only for a
    /// reader of an older directory, which reads `domains`.
    paged: bool,
    /// Held by the one batch writing domain pages.
    page_writer: Arc<std::sync::Mutex<()>>,
    /// Claim keys known to be stored (see [`claims::KnownClaims`]).
    known_claims: Arc<std::sync::Mutex<claims::KnownClaims>>,
}

/// One open sled database and its trees.
struct Handles {
    db: sled::Db,
    meta: sled::Tree,
    scans: sled::Tree,
    tasks: sled::Tree,
    task_scan: sled::Tree,
    domains: sled::Tree,
    domain_pages: sled::Tree,
    targets: sled::Tree,
    claims: sled::Tree,
    counters: sled::Tree,
}

/// Group commit: one flush at a time, and a caller whose writes a finished
/// flush already covered returns without flushing again. (sled 0.34 can
/// deadlock when many `flush_async` calls race with batch writes, seen at
/// 32 concurrent reporters: so flushes are never concurrent here.)
#[derive(Debug, Default)]
struct Flusher {
    /// Bumped by every flush request, after the caller's writes.
    requested: std::sync::atomic::AtomicU64,
    /// The request number every write before which is on disk.
    flushed: tokio::sync::Mutex<u64>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// How long [`Store::open`] waits for the directory's lock: a store dropped
/// a moment ago releases it when sled's background threads notice.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Remove the snapshot files sled began and never finished in `dir`.
///
/// sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames it
/// when whole; a full disk or a kill while it writes leaves the
/// `.generating` file, which its next open takes for the newest snapshot
/// and refuses as corrupt (sled issue #1527) — the directory could no
/// longer be opened. The file was never complete, the log and the last
/// finished snapshot hold everything: it goes (measured: the 30-minute
/// soak's tmpfs filled while sled wrote a snapshot; every later open
/// failed with "corrupt store").
fn drop_unfinished_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(
                    file = %entry.path().display(),
                    "removed a snapshot sled began and never finished (a full disk or a kill while it wrote)"
                ),
                Err(error) => tracing::warn!(
                    file = %entry.path().display(), %error,
                    "cannot remove an unfinished sled snapshot; opening may fail"
                ),
            }
        }
    }
}

fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db> {
    drop_unfinished_snapshots(dir);
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
        {
            Ok(db) => return Ok(db),
            // sled says so only in words (io::ErrorKind::Other).
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(storage(e)),
        }
    }
}

/// sled's page cache for a serving coordinator: bounded well below the
/// coordinator's 1 GiB goal (sled's own default is 1 GiB, which alone
/// filled the goal at 3M domains).
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// The page cache of one-shot readers (status, export, report offline).
pub const READER_CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl Handles {
    /// `paged`: the directory keeps domain records in pages (format 3, and
    /// every writer). A reader of an older directory does not open
    /// `domain_pages` — opening a tree creates it, and readers write
    /// nothing —: the handle is then `domains` again, read one key each.
    fn open(dir: &Path, cache_bytes: u64, paged: bool) -> Result<Self> {
        let db = open_sled(dir, cache_bytes)?;
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        Ok(Self {
            meta: tree("meta")?,
            scans: tree("scans")?,
            tasks: tree("tasks")?,
            task_scan: tree("task_scan")?,
            domains: tree("domains")?,
            domain_pages: tree(if paged { "domain_pages" } else { "domains" })?,
            targets: tree("targets")?,
            claims: tree("claims")?,
            counters: tree("counters")?,
            db,
        })
    }
}

impl Store {
    /// Opens (creating it if needed) the store in `dir`, then removes what an
    /// interrupted [`Self::create_scan`] left behind. sled's page cache is
    /// [`DEFAULT_CACHE_BYTES`].
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`Self::open`] with a page cache of `cache_bytes` (a one-shot reader
    /// such as an offline report needs far less than a serving coordinator).
    /// An older format is upgraded (`format`), a newer one refused.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let found = format::read(dir)?;
        format::check(dir, found)?;
        let store = Self::open_trees(dir, cache_bytes, true)?;
        if found.is_some_and(|v| v < format::PAGED) {
            store.page_domain_records()?;
        }
        format::upgrade(dir, found)?;
        store.drop_unpaged_records()?;
        store.recover()?;
        if store.drop_staging()? {
            tracing::warn!("removed the staged lists of interrupted submissions");
        }
        Ok(store)
    }

    /// Open an existing store to read it (status, report, export, compare,
    /// vantages): no clean-up, no upgrade, nothing written by this code
    /// (but for a sled snapshot never finished, which no open survives) —
    /// tasks of an interrupted submission stay, invisible without their
    /// scan's meta, and the staged lists stay for the next writer.
    pub fn open_reader(dir: &Path) -> Result<Self> {
        let found = format::read(dir)?;
        if found.is_none() {
            return Err(StoreError::Format(format!(
                "{} holds no mxscope data",
                dir.display()
            )));
        }
        format::check(dir, found)?;
        let paged = found.is_some_and(|v| v >= format::PAGED);
        Self::open_trees(dir, READER_CACHE_BYTES, paged)
    }

    /// After a writer's last handle is gone (a clean stop): open and close
    /// the directory once more, so that sled does now what it does on the
    /// first open after a writer (pads its log segment, writes a snapshot)
    /// and readers afterwards find nothing to change. Waits for the lock
    /// like [`Self::open`]; blocking.
    pub fn settle(dir: &Path) -> Result<()> {
        let db = open_sled(dir, READER_CACHE_BYTES)?;
        db.flush().map_err(storage)?;
        Ok(())
    }

    fn open_trees(dir: &Path, cache_bytes: u64, paged: bool) -> Result<Self> {
        Ok(Self {
            paged,
            page_writer: Arc::default(),
            dir: Arc::from(dir),
            handles: Arc::new(std::sync::RwLock::new(Some(Arc::new(Handles::open(
                dir,
                cache_bytes,
                paged,
            )?)))),
            cache_bytes,
            flusher: Arc::default(),
            known_claims: Arc::default(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The open database; an error while [`Self::reopen`] has it closed.
    fn h(&self) -> Result<Arc<Handles>> {
        self.handles
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StoreError::Storage("the store is closed for a reopen".into()))
    }

    /// Close sled and open it again: after an I/O error (a full disk)
    /// sled fails every later write until it is reopened. Waits for the
    /// directory's lock like [`Self::open`] (handles still held elsewhere,
    /// e.g. a running export, keep it); on failure the store stays closed
    /// and a later call may succeed. Blocking.
    pub fn reopen(&self) -> Result<()> {
        let mut slot = self
            .handles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(slot.take());
        // A claim written but never flushed may be gone with the old handles.
        claims::forget_claims(&self.known_claims, b"");
        *slot = Some(Arc::new(Handles::open(
            &self.dir,
            self.cache_bytes,
            self.paged,
        )?));
        Ok(())
    }

    /// Whether the store takes a write again: a key written to sled's
    /// default tree (which holds nothing else), removed, and flushed.
    /// Blocking.
    pub fn probe_write(&self) -> Result<()> {
        let h = self.h()?;
        h.db.insert(b"write-probe", &[1u8][..]).map_err(storage)?;
        h.db.remove(b"write-probe").map_err(storage)?;
        h.db.flush().map_err(storage)?;
        Ok(())
    }

    /// Format 2 → 3: the domain records, one key each in `domains`, copied
    /// into pages (half full, as a split leaves them). Crash-safe: the
    /// pages of an interrupted run are cleared first, and `domains` is
    /// emptied only once the directory says format 3.
    fn page_domain_records(&self) -> Result<()> {
        let h = self.h()?;
        h.domain_pages.clear().map_err(storage)?;
        let mut prefix: Vec<u8> = Vec::new();
        let mut page = pages::Page::default();
        let write = |prefix: &[u8], page: &mut pages::Page| -> Result<()> {
            // Cut by count here, by bytes (records of several KiB) there.
            for part in std::mem::take(page).split() {
                let mut key = prefix.to_vec();
                key.extend_from_slice(&part.entries[0].0);
                h.domain_pages
                    .insert(key, part.encode()?)
                    .map_err(storage)?;
            }
            Ok(())
        };
        let mut moved = 0u64;
        for kv in h.domains.iter() {
            let (key, value) = kv.map_err(storage)?;
            let (at, domain) = pages::split_key(&key)?;
            if at != prefix.as_slice() || page.entries.len() >= pages::PAGE_RECORDS / 2 {
                write(&prefix, &mut page)?;
                prefix = at.to_vec();
            }
            page.entries.push((domain.to_vec(), value.to_vec()));
            moved += 1;
        }
        write(&prefix, &mut page)?;
        h.db.flush().map_err(storage)?;
        if moved > 0 {
            tracing::info!(
                records = moved,
                "domain records moved into pages (store format 3)"
            );
        }
        Ok(())
    }

    /// Empties `domains` once the directory is of format 3 (a no-op but
    /// after [`Self::page_domain_records`], or a kill right after it).
    fn drop_unpaged_records(&self) -> Result<()> {
        let h = self.h()?;
        if !h.domains.is_empty() {
            h.domains.clear().map_err(storage)?;
            h.db.flush().map_err(storage)?;
        }
        Ok(())
    }

    /// Deletes tasks (and index entries) whose scan has no meta, and keeps
    /// the scan counter ahead of every stored scan.
    fn recover(&self) -> Result<()> {
        let mut known = HashSet::new();
        let mut highest = 0;
        for kv in self.h()?.scans.iter() {
            let (key, _) = kv.map_err(storage)?;
            if let Some(n) = std::str::from_utf8(&key).ok().and_then(keys::scan_number) {
                highest = highest.max(n);
            }
            known.insert(key.to_vec());
        }
        let mut orphans = sled::Batch::default();
        let mut orphan_tasks = 0u64;
        for kv in self.h()?.tasks.iter() {
            let (key, _) = kv.map_err(storage)?;
            if !keys::scan_of_key(&key).is_some_and(|scan| known.contains(scan)) {
                orphans.remove(key);
                orphan_tasks += 1;
            }
        }
        let mut stale_index = sled::Batch::default();
        let mut stale = 0u64;
        for kv in self.h()?.task_scan.iter() {
            let (key, scan) = kv.map_err(storage)?;
            if !known.contains(scan.as_ref()) {
                stale_index.remove(key);
                stale += 1;
            }
        }
        self.h()?
            .task_scan
            .apply_batch(stale_index)
            .map_err(storage)?;
        self.h()?.tasks.apply_batch(orphans).map_err(storage)?;
        if self.next_number()? < highest {
            self.h()?
                .meta
                .insert(NEXT_SCAN, &highest.to_be_bytes())
                .map_err(storage)?;
        }
        if orphan_tasks + stale > 0 {
            tracing::warn!(
                orphan_tasks,
                stale_index = stale,
                "removed tasks of an interrupted scan submission"
            );
            self.h()?.db.flush().map_err(storage)?;
        }
        Ok(())
    }

    fn next_number(&self) -> Result<u64> {
        match self.h()?.meta.get(NEXT_SCAN).map_err(storage)? {
            Some(bytes) => keys::decode_u64("scan counter", &bytes),
            None => Ok(0),
        }
    }

    /// A fresh scan id, `s1`, `s2`, ...; never repeats once a scan with it
    /// was stored (the counter is flushed with the scan).
    pub fn next_scan_id(&self) -> Result<String> {
        for _ in 0..CAS_ATTEMPTS {
            let old = self.h()?.meta.get(NEXT_SCAN).map_err(storage)?;
            let current = match &old {
                Some(bytes) => keys::decode_u64("scan counter", bytes)?,
                None => 0,
            };
            let next = current
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("scan counter overflow".into()))?;
            let swapped = self
                .h()?
                .meta
                .compare_and_swap(NEXT_SCAN, old, Some(&next.to_be_bytes()[..]))
                .map_err(storage)?;
            if swapped.is_ok() {
                return Ok(format!("s{next}"));
            }
        }
        Err(StoreError::Contention("scan counter"))
    }

    // ---- durability ----

    /// Waits until everything written before the call is on disk.
    pub async fn flush(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let mine = self.flusher.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.flusher.flushed.lock().await;
        if *flushed >= mine {
            // A flush that started after our writes has finished.
            return Ok(());
        }
        // Every request up to here was made after its writes: this flush covers them.
        let covers = self.flusher.requested.load(Ordering::SeqCst);
        let db = self.h()?.db.clone();
        let started = std::time::Instant::now();
        let flushed_now = tokio::task::spawn_blocking(move || db.flush()).await;
        crate::metrics::flush_observed(started.elapsed());
        flushed_now
            .map_err(|e| StoreError::Storage(Box::new(e)))?
            .map_err(storage)?;
        *flushed = covers;
        Ok(())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.h()?.db.size_on_disk().map_err(storage)
    }
}
