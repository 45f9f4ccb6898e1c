//! Scans and tasks in the store: a scan's meta, made visible only once its
//! tasks are on disk, and the tasks with their per-task index.

use super::error::{decode, encode, storage};
use super::results::Decoded;
use super::{keys, Result, Store, StoreError, TASK_BATCH};
use crate::model::{ScanMeta, Task};

impl Store {
    // ---- scans ----

    /// Stores a new scan and all its tasks, all or nothing across crashes:
    /// the tasks are written and flushed first, the meta that makes them
    /// visible last, then flushed again. Blocks for two disk flushes.
    pub fn create_scan(&self, scan: &ScanMeta, tasks: &[Task]) -> Result<()> {
        self.put_new_scan_tasks(&scan.id, tasks)?;
        self.commit_scan(scan)
    }

    /// The first half of [`Self::create_scan`] for a scan whose tasks are
    /// made in a stream: stores tasks of the not yet visible scan `scan_id`
    /// (call as often as needed, then [`Self::commit_scan`]).
    pub fn put_new_scan_tasks(&self, scan_id: &str, tasks: &[Task]) -> Result<()> {
        keys::check_id("scan id", scan_id)?;
        if self.h()?.scans.contains_key(scan_id).map_err(storage)? {
            return Err(StoreError::ScanExists(scan_id.to_string()));
        }
        if let Some(task) = tasks.iter().find(|t| t.scan != scan_id) {
            return Err(StoreError::Invalid(format!(
                "task {} belongs to scan {}, not {scan_id}",
                task.id, task.scan
            )));
        }
        self.write_tasks(tasks)
    }

    /// The second half of [`Self::create_scan`]: flush the tasks, then
    /// store and flush the meta that makes the scan visible.
    pub fn commit_scan(&self, scan: &ScanMeta) -> Result<()> {
        keys::check_id("scan id", &scan.id)?;
        if self.h()?.scans.contains_key(&scan.id).map_err(storage)? {
            return Err(StoreError::ScanExists(scan.id.clone()));
        }
        self.h()?.db.flush().map_err(storage)?;
        self.put_scan(scan)?;
        self.h()?.db.flush().map_err(storage)?;
        Ok(())
    }

    /// Stores (replaces) a scan's meta, e.g. its state.
    pub fn put_scan(&self, scan: &ScanMeta) -> Result<()> {
        keys::check_id("scan id", &scan.id)?;
        let value = encode("scan", scan)?;
        self.h()?.scans.insert(&scan.id, value).map_err(storage)?;
        Ok(())
    }

    /// One scan's meta.
    pub fn scan(&self, id: &str) -> Result<Option<ScanMeta>> {
        match self.h()?.scans.get(id).map_err(storage)? {
            Some(bytes) => decode("scan", id.as_bytes(), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every scan, by number (`s2` before `s10`; other ids last, by name).
    pub fn scans(&self) -> Result<Vec<ScanMeta>> {
        let mut all = self
            .h()?
            .scans
            .iter()
            .map(|kv| {
                let (key, value) = kv.map_err(storage)?;
                decode::<ScanMeta>("scan", &key, &value)
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| {
            let rank = |s: &ScanMeta| keys::scan_number(&s.id).unwrap_or(u64::MAX);
            rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    // ---- tasks ----

    /// Writes tasks in bounded batches: index entries first (a dangling
    /// index entry reads as "no such task"), then the tasks.
    pub(super) fn write_tasks(&self, tasks: &[Task]) -> Result<()> {
        for chunk in tasks.chunks(TASK_BATCH) {
            let mut index = sled::Batch::default();
            let mut values = sled::Batch::default();
            let mut new_index = false;
            for task in chunk {
                let key = keys::scan_key(&task.scan, task.id.as_bytes())?;
                match self.h()?.task_scan.get(&task.id).map_err(storage)? {
                    Some(scan) if scan.as_ref() == task.scan.as_bytes() => {}
                    Some(scan) => {
                        return Err(StoreError::Invalid(format!(
                            "task {} already belongs to scan {}",
                            task.id,
                            String::from_utf8_lossy(&scan)
                        )))
                    }
                    None => {
                        index.insert(task.id.as_bytes(), task.scan.as_bytes());
                        new_index = true;
                    }
                }
                values.insert(key, encode("task", task)?);
            }
            if new_index {
                self.h()?.task_scan.apply_batch(index).map_err(storage)?;
            }
            self.h()?.tasks.apply_batch(values).map_err(storage)?;
        }
        Ok(())
    }

    /// Stores (replaces) one task.
    pub fn put_task(&self, task: &Task) -> Result<()> {
        self.write_tasks(std::slice::from_ref(task))
    }

    /// Stores (replaces) tasks, in batches.
    pub fn put_tasks(&self, tasks: &[Task]) -> Result<()> {
        self.write_tasks(tasks)
    }

    /// One task by id.
    pub fn task(&self, id: &str) -> Result<Option<Task>> {
        let Some(scan) = self.h()?.task_scan.get(id).map_err(storage)? else {
            return Ok(None);
        };
        let scan = std::str::from_utf8(&scan)
            .map_err(|_| StoreError::Corrupt(format!("task index of {id:?} is not UTF-8")))?;
        let key = keys::scan_key(scan, id.as_bytes())
            .map_err(|e| StoreError::Corrupt(format!("task index of {id:?}: {e}")))?;
        match self.h()?.tasks.get(&key).map_err(storage)? {
            Some(bytes) => decode("task", &key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every task of every scan (startup load), by scan then task id.
    pub fn tasks(&self) -> impl Iterator<Item = Result<Task>> + '_ {
        Decoded::new("task", self.h().map(|h| h.tasks.iter()))
    }

    /// Exactly the tasks of one scan, by task id.
    pub fn tasks_of_scan(&self, scan: &str) -> impl Iterator<Item = Result<Task>> + '_ {
        let iter = keys::scan_prefix(scan).and_then(|p| Ok(self.h()?.tasks.scan_prefix(p)));
        Decoded::new("task", iter)
    }
}
