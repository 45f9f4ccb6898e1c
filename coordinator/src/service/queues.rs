//! The coordinator's memory: a bounded window of pending tasks per
//! (vantage, class), the leased tasks, progress counters and the writes
//! waiting for the store. Everything else stays in the store.
//!
//! Pending tasks reach memory through *feeds*: the tasks of one
//! (scan, vantage, class) are numbered without gaps (`scheduler::task_id`),
//! so a feed is a cursor `next..end` read from the store by id, a window at
//! a time. A task leaves memory when it is finished or its scan cancelled.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::model::{ScanMeta, Task, TaskState};
use crate::networks::NetworkClaims;
use crate::scheduler::TaskClass;

use super::types::{TaskCounts, WorkerHello};

/// A store write decided under the lock, applied in order after it.
#[derive(Debug)]
pub(super) enum Write {
    /// Store (replace) a task.
    Task(Task),
    /// Store (replace) a scan's meta.
    Scan(ScanMeta),
    /// Record the items of a failed task that have no result yet.
    FailItems(Task, String),
    /// The scan is over: forget its target claims.
    PruneClaims(String),
}

/// Progress of one scan.
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub(super) resolve: TaskCounts,
    pub(super) probe: TaskCounts,
    pub(super) failed_items: u64,
}

impl Progress {
    pub(super) fn counts(&mut self, class: TaskClass) -> &mut TaskCounts {
        match class {
            TaskClass::Resolve => &mut self.resolve,
            TaskClass::Probe => &mut self.probe,
        }
    }
}

/// The tasks of one (scan, vantage, class) not read from the store yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Feed {
    pub(super) scan: String,
    pub(super) vantage: String,
    pub(super) class: TaskClass,
    /// The next task number to read.
    pub(super) next: u64,
    /// One past the last task number made.
    pub(super) end: u64,
}

/// What a refill reads: the ids `first..` of one feed.
#[derive(Debug, Clone)]
pub(super) struct FeedRead {
    pub(super) feed: usize,
    pub(super) scan: String,
    pub(super) ids: Vec<String>,
    pub(super) first: u64,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    /// Unfinished tasks in memory: the pending window and every lease.
    pub(super) tasks: HashMap<String, Task>,
    /// Pending task ids per (vantage, class), in lease order.
    pub(super) queues: HashMap<(String, TaskClass), VecDeque<String>>,
    /// Cursors over the pending tasks still only in the store.
    pub(super) feeds: Vec<Feed>,
    /// Tasks loaded at open (leased then) that their feed must not load again.
    pub(super) loaded: HashSet<String>,
    pub(super) progress: HashMap<String, Progress>,
    pub(super) scans: HashMap<String, ScanMeta>,
    pub(super) workers: HashMap<String, WorkerHello>,
    /// Worker → (vantage, last lease or heartbeat), for the vantage cap's shares.
    pub(super) seen: HashMap<String, (String, u64)>,
    /// Worker → its last call (register, lease, heartbeat): the three
    /// worker maps forget a worker silent for the coordinator's window.
    pub(super) last_call: HashMap<String, u64>,
    /// Networks held by leased probe tasks (one worker per network).
    pub(super) networks: NetworkClaims,
    /// Store writes decided but not yet applied, in decision order.
    pub(super) outbox: Vec<Write>,
}

impl Inner {
    /// Count a task that was just made (or found at open) in `state`.
    pub(super) fn count_new(
        &mut self,
        scan: &str,
        class: TaskClass,
        state: &TaskState,
        n: u64,
        items: u64,
    ) {
        let counts = self
            .progress
            .entry(scan.to_string())
            .or_default()
            .counts(class);
        counts.total += n;
        counts.items += items;
        counts.add(state, i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Move a task's count from `before` to its state now.
    pub(super) fn count(&mut self, task: &Task, before: &TaskState) {
        let counts = self
            .progress
            .entry(task.scan.clone())
            .or_default()
            .counts(TaskClass::of(task));
        counts.add(before, -1);
        counts.add(&task.state, 1);
    }

    /// Record `write` for the store (applied, in order, after the lock).
    pub(super) fn write(&mut self, write: Write) {
        self.outbox.push(write);
    }

    fn queue(&mut self, vantage: &str, class: TaskClass) -> &mut VecDeque<String> {
        self.queues.entry((vantage.to_string(), class)).or_default()
    }

    pub(super) fn queue_len(&self, vantage: &str, class: TaskClass) -> usize {
        self.queues
            .get(&(vantage.to_string(), class))
            .map_or(0, VecDeque::len)
    }

    /// Put a pending task in memory, at the back of its queue.
    pub(super) fn enqueue_back(&mut self, task: Task) {
        let id = task.id.clone();
        self.queue(&task.vantage, TaskClass::of(&task))
            .push_back(id);
        self.tasks.insert(task.id.clone(), task);
    }

    /// Queue a task already in memory at the front (released, expired, held back).
    pub(super) fn enqueue_front(&mut self, task_id: &str) {
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        let (vantage, class) = (task.vantage.clone(), TaskClass::of(task));
        self.queue(&vantage, class).push_front(task_id.to_string());
    }

    /// Forget workers silent for more than `window` ms: the worker maps
    /// hold the live workers plus those of the last window, not every id
    /// ever seen.
    pub(super) fn prune_workers(&mut self, now: u64, window: u64) {
        let last_call = &mut self.last_call;
        last_call.retain(|_, at| now.saturating_sub(*at) <= window);
        self.workers.retain(|id, _| last_call.contains_key(id));
        self.seen.retain(|id, _| last_call.contains_key(id));
    }

    /// Workers of `vantage` seen within `ttl` (at least 1).
    pub(super) fn live_workers(&self, vantage: &str, now: u64, ttl: u64) -> u32 {
        let live = self
            .seen
            .values()
            .filter(|(v, at)| v == vantage && now.saturating_sub(*at) <= ttl)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX).max(1)
    }

    /// The next pending task of `vantage` of the first of `classes` that
    /// has one.
    pub(super) fn next_pending(&mut self, vantage: &str, classes: &[TaskClass]) -> Option<String> {
        for class in classes {
            let Some(queue) = self.queues.get_mut(&(vantage.to_string(), *class)) else {
                continue;
            };
            while let Some(id) = queue.pop_front() {
                if self
                    .tasks
                    .get(&id)
                    .is_some_and(|t| t.state == TaskState::Pending)
                {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Which ids to read to bring the (vantage, class) queue back to
    /// `window` tasks; `None` when it holds half of that or its feeds are dry.
    pub(super) fn plan_refill(
        &self,
        vantage: &str,
        class: TaskClass,
        window: usize,
    ) -> Option<FeedRead> {
        let len = self.queue_len(vantage, class);
        let (index, feed) = self
            .feeds
            .iter()
            .enumerate()
            .filter(|(_, f)| f.vantage == vantage && f.class == class && f.next < f.end)
            .min_by_key(|(_, f)| scan_rank(&f.scan))?;
        let ids = crate::scheduler::refill(len, window, feed.next, feed.end)?
            .map(|seq| crate::scheduler::task_id(&feed.scan, vantage, class, seq))
            .collect();
        Some(FeedRead {
            feed: index,
            scan: feed.scan.clone(),
            ids,
            first: feed.next,
        })
    }

    /// Take what a refill read: `tasks[i]` is the task numbered
    /// `read.first + i` (reading stopped at the first missing one).
    pub(super) fn admit_read(&mut self, read: &FeedRead, tasks: Vec<Task>) {
        let Some(feed) = self.feeds.get(read.feed) else {
            return;
        };
        if feed.scan != read.scan || feed.next != read.first {
            // Another refill or a cancel moved this feed meanwhile.
            return;
        }
        let advanced = tasks.len() as u64;
        let scan = feed.scan.clone();
        let running = self
            .scans
            .get(&scan)
            .is_some_and(|s| s.state == crate::model::ScanState::Running);
        for task in tasks {
            if self.loaded.remove(&task.id) || self.tasks.contains_key(&task.id) {
                continue;
            }
            if running && task.state == TaskState::Pending {
                self.enqueue_back(task);
            }
        }
        if let Some(feed) = self.feeds.get_mut(read.feed) {
            feed.next += advanced;
        }
    }

    /// The feed of (scan, vantage, class), made if missing.
    pub(super) fn feed(&mut self, scan: &str, vantage: &str, class: TaskClass) -> &mut Feed {
        let found = self
            .feeds
            .iter()
            .position(|f| f.scan == scan && f.vantage == vantage && f.class == class);
        let index = match found {
            Some(index) => index,
            None => {
                self.feeds.push(Feed {
                    scan: scan.to_string(),
                    vantage: vantage.to_string(),
                    class,
                    next: 0,
                    end: 0,
                });
                self.feeds.len() - 1
            }
        };
        &mut self.feeds[index]
    }

    /// Forget the queued and leased work of a cancelled scan (its tasks stay
    /// in the store as they are).
    pub(super) fn drop_scan_work(&mut self, scan: &str, now: u64) {
        let dropped: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.scan == scan)
            .map(|t| t.id.clone())
            .collect();
        for id in dropped {
            self.networks.release(&id, now);
        }
        self.tasks.retain(|_, t| t.scan != scan);
        self.feeds.retain(|f| f.scan != scan);
        self.loaded
            .retain(|id| !id.starts_with(&format!("{scan}/")));
    }
}

/// Scans in creation order (`s2` before `s10`).
fn scan_rank(scan: &str) -> (u64, &str) {
    let n = scan
        .strip_prefix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    (n, scan)
}
