//! Which worker probes which network (DESIGN §8): the probe tasks of one
//! vantage whose targets share a /24 (IPv4) or /48 (IPv6) are leased to one
//! worker at a time, so the per-network rate that each worker enforces
//! locally holds for the whole fleet. A task that would put a second worker
//! on a network waits in the queue while others are leased. A network stays
//! with its last worker for [`HANDOVER_MS`] after its last task ends, so a
//! new worker cannot open a session right after the old one's last.

use std::collections::HashMap;

use mxscope_common::politeness::network_of;

use crate::model::{Task, Work};

type Network = (u8, u128);

/// How long a released network stays reserved to its last worker.
pub const HANDOVER_MS: u64 = 1_000;

/// The networks held by leased probe tasks, per vantage.
#[derive(Debug, Default)]
pub struct NetworkClaims {
    /// (vantage, network) → (worker, tasks holding it).
    held: HashMap<(String, Network), (String, u32)>,
    /// task → (vantage, networks) it holds.
    by_task: HashMap<String, (String, Vec<Network>)>,
    /// (vantage, network) → (last worker, until when) after its last task ended.
    cooling: HashMap<(String, Network), (String, u64)>,
}

fn networks(task: &Task) -> Vec<Network> {
    let Work::Probe { targets } = &task.kind else {
        return Vec::new();
    };
    let mut nets: Vec<Network> = targets.iter().map(|t| network_of(t.ip)).collect();
    nets.sort_unstable();
    nets.dedup();
    nets
}

impl NetworkClaims {
    /// Whether `worker` may take `task` at `now_ms` (no other worker holds,
    /// or has just held, one of its networks).
    pub fn allows(&self, task: &Task, worker: &str, now_ms: u64) -> bool {
        networks(task).into_iter().all(|net| {
            let key = (task.vantage.clone(), net);
            let held = self
                .held
                .get(&key)
                .is_none_or(|(holder, _)| holder == worker);
            let cool = self
                .cooling
                .get(&key)
                .is_none_or(|(last, until)| last == worker || *until <= now_ms);
            held && cool
        })
    }

    /// `worker` leased `task`: hold its networks.
    pub fn claim(&mut self, task: &Task, worker: &str) {
        self.release(&task.id, 0);
        let nets = networks(task);
        if nets.is_empty() {
            return;
        }
        for net in &nets {
            let entry = self
                .held
                .entry((task.vantage.clone(), *net))
                .or_insert_with(|| (worker.to_string(), 0));
            entry.1 += 1;
        }
        self.by_task
            .insert(task.id.clone(), (task.vantage.clone(), nets));
    }

    /// `task` is no longer leased (done, released, expired, cancelled) at `now_ms`.
    pub fn release(&mut self, task_id: &str, now_ms: u64) {
        let Some((vantage, nets)) = self.by_task.remove(task_id) else {
            return;
        };
        if self.cooling.len() > 100_000 {
            self.cooling.retain(|_, (_, until)| *until > now_ms);
        }
        for net in nets {
            let key = (vantage.clone(), net);
            if let Some(entry) = self.held.get_mut(&key) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    if let Some((worker, _)) = self.held.remove(&key) {
                        self.cooling
                            .insert(key, (worker, now_ms.saturating_add(HANDOVER_MS)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Target, TaskState};

    fn task(id: &str, vantage: &str, ips: &[&str]) -> Task {
        Task {
            id: id.into(),
            scan: "s1".into(),
            vantage: vantage.into(),
            kind: Work::Probe {
                targets: ips
                    .iter()
                    .map(|ip| Target {
                        ip: ip.parse().unwrap(),
                        mx_names: vec![],
                    })
                    .collect(),
            },
            state: TaskState::Pending,
            epoch: 0,
            attempts: 0,
        }
    }

    #[test]
    fn one_worker_per_network_and_vantage() {
        let mut claims = NetworkClaims::default();
        let a = task("p1", "V", &["192.0.2.1", "198.51.100.1"]);
        let b = task("p2", "V", &["192.0.2.200"]);
        let c = task("p3", "V", &["203.0.113.1"]);
        let other_vantage = task("p4", "W", &["192.0.2.7"]);
        claims.claim(&a, "w1");
        assert!(claims.allows(&b, "w1", 0), "the holder may take more");
        assert!(!claims.allows(&b, "w2", 0));
        assert!(claims.allows(&c, "w2", 0));
        assert!(claims.allows(&other_vantage, "w2", 0));
        claims.claim(&b, "w1");
        claims.release("p1", 10);
        assert!(!claims.allows(&b, "w2", 10), "p2 still holds 192.0.2.0/24");
        claims.release("p2", 20);
        assert!(!claims.allows(&b, "w2", 500), "handed over too early");
        assert!(claims.allows(&b, "w1", 500));
        assert!(claims.allows(&b, "w2", 20 + HANDOVER_MS));
        claims.release("p2", 30);
    }
}
