//! Running one leased task with the probe engine: a resolve task gives one
//! domain record per domain, a probe task one target record per IP.
//!
//! Items run concurrently, bounded by their kind's permits (shared by all
//! tasks: sessions for targets, resolutions for domains); each item frees
//! its slot ([`super::pace::slots`]) as soon as it ends, so a task's slow target
//! holds back nobody else. Finished
//! records go through a [`Batcher`] to the uplink.
//! When the uplink is full the task waits, and so starts no new item. The
//! task's cancellation token (its lease was lost, or shutdown ran out of
//! grace) stops it at once: nothing more is sent for it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mxscope_common::options::ScanOptions;
use mxscope_common::politeness::exclusions::Exclusions;
use mxscope_common::wire::convert::InvalidOptions;
use mxscope_common::wire::task::SlotKind;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::link::leases::Lease;
use super::pace::pacing::{self, Limits, PacedSessions, Pacer};
use super::pace::retry::{Gate, RetryPolicy};
use super::pace::slots::{Claim, Pool};
use super::task::{TaskSpec, Work};
use super::uplink::{Batcher, UplinkSender};
use crate::config::{ProbeConfig, SecurityConfig};
use crate::dns::{DnsConfig, MxResolver};
use crate::probe::Prober;
use crate::security::checks::PolicyRoots;
use crate::tls::handshake::TlsContext;
use item::{Item, Stamp};

/// Most scans whose probe contexts are kept at once.
const MAX_CACHED_SCANS: usize = 32;
/// Batches are cut at about this many bytes of JSON (far below gRPC's limit).
pub const MAX_BATCH_BYTES: usize = 2 << 20;
/// A probe task's finished targets go to the coordinator at most this long
/// after the first of them, full batch or not: the progress counts targets
/// as each ends, not when the task's slowest one does.
pub const PARTIAL_BATCH_AFTER: Duration = Duration::from_secs(1);

/// The probe configuration of a scan from a worker bound to `bind` whose
/// resolver override is `overridden` (the scan's zeros become the defaults).
pub fn probe_config(
    options: &ScanOptions,
    bind: Option<IpAddr>,
    overridden: &[SocketAddr],
) -> Result<ProbeConfig, InvalidOptions> {
    let dns = dns_config(options, overridden)?;
    Ok(ProbeConfig {
        ehlo_name: options.ehlo_name_or(crate::config::default_ehlo_name())?,
        bind,
        port: options.port,
        timeouts: options.timeouts(),
        legacy: options.legacy_versions(),
        depth: options.tls_depth,
        depth_budget: options.depth_budget(),
        allow_private: options.allow_private,
        security: options.security.then(|| SecurityConfig {
            trust_anchor: None,
            trust_anchor_text: options.trust_anchor_pem.clone(),
            resolvers: dns.resolvers,
            dns_timeout: dns.timeout,
            signed_name: options.dnssec_check_name.clone(),
        }),
        ..ProbeConfig::default()
    })
}

/// The prober of a scan's options (no pacing): TLS roots from its CA
/// bundle or Mozilla's, [`probe_config`], the security checks. The one
/// builder: the fleet's scans and `mxscope-worker probe` (whose flags make
/// the same options) both start here.
pub fn prober_of(
    options: &ScanOptions,
    bind: Option<IpAddr>,
    overridden: &[SocketAddr],
) -> Result<Prober, RunError> {
    let tls = match &options.ca_pem {
        None => TlsContext::new(None),
        Some(pem) => TlsContext::from_pem(pem.as_bytes()),
    }
    .map_err(|e| RunError::TrustAnchors(e.to_string()))?;
    let roots = match &options.ca_pem {
        None => PolicyRoots::Mozilla,
        Some(pem) => PolicyRoots::Pem(pem.as_bytes()),
    };
    let config = probe_config(options, bind, overridden)?;
    Prober::with_checks(config, tls, roots).map_err(|e| RunError::Security(e.to_string()))
}

/// The resolver configuration: the worker's `overridden` resolvers when it
/// has any, else the scan's.
pub fn dns_config(
    options: &ScanOptions,
    overridden: &[SocketAddr],
) -> Result<DnsConfig, InvalidOptions> {
    let resolvers = if overridden.is_empty() {
        options.resolver_addrs()?
    } else {
        overridden.to_vec()
    };
    Ok(DnsConfig {
        resolvers,
        timeout: options.timeout_dns(),
        ..DnsConfig::default()
    })
}

/// How a scan's targets that said "not now" are retried.
pub fn retry_policy(options: &ScanOptions) -> RetryPolicy {
    RetryPolicy {
        attempts: options.retry_attempts(),
        first_delay: options.retry_delay(),
    }
}

/// A scan's per-IP gap, per-network rate and this worker's share of the vantage cap.
pub fn limits(options: &ScanOptions) -> Limits {
    Limits {
        ip_gap: options.ip_gap(),
        network_spacing: pacing::spacing_of_milli(options.network_rate_milli()),
        worker_spacing: pacing::spacing_of_milli(options.vantage_rate_milli),
    }
}

/// What every task of the worker shares.
#[derive(Debug)]
pub struct Engine {
    /// SMTP sessions at once, across all tasks, and the targets leased
    /// for them: what the lease loop asks probe work for.
    pub sessions: Pool,
    /// Domain resolutions at once, and the domains leased for them.
    pub resolutions: Pool,
    /// Session pacing (per IP, per network, per worker), across tasks.
    pub pacer: Arc<Pacer>,
    pub bind: Option<IpAddr>,
    pub resolvers_override: Vec<SocketAddr>,
    /// The egress check failed: probe targets are recorded as skipped.
    pub egress_blocked: bool,
    pub batch_size: usize,
    scans: Mutex<HashMap<String, Arc<ScanContext>>>,
}

/// One scan's prober (TLS roots built once), resolver (built on first use)
/// and what its options say about exclusions, retries and pacing.
#[derive(Debug)]
struct ScanContext {
    options: ScanOptions,
    prober: Prober,
    resolver: OnceLock<Result<MxResolver, String>>,
    /// Never resolved, never contacted (the coordinator's and the scan's).
    exclusions: Exclusions,
    retry: RetryPolicy,
    limits: Limits,
}

/// Why a task could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The scan's `ca_pem` is not a usable PEM bundle; the scan must be fixed.
    #[error("the scan's trust anchors are unusable: {0}")]
    TrustAnchors(String),
    /// The scan's options do not parse here (they were checked at entry:
    /// a stored scan from another version?); the scan must be fixed.
    #[error("the scan's options are unusable: {0}")]
    Options(#[from] InvalidOptions),
    /// No resolver could be built (e.g. no system configuration); pass `--resolver`.
    #[error("no DNS resolver: {0}")]
    Resolver(String),
    /// The security checks could not be prepared (trust anchor, CA bundle,
    /// resolver); the scan's options must be fixed.
    #[error("the security checks are unusable: {0}")]
    Security(String),
}

/// How a task run ended.
#[derive(Debug)]
pub enum RunEnd {
    /// Every item ran; the last batch is queued.
    Finished {
        items: usize,
    },
    /// Cancelled (lease lost, or shutdown ran out of grace): nothing more sent.
    Cancelled,
    Failed(RunError),
}

impl Engine {
    /// A worker of `sessions` SMTP sessions and `resolutions` domain
    /// resolutions at once.
    pub fn new(
        sessions: usize,
        resolutions: usize,
        bind: Option<IpAddr>,
        resolvers_override: Vec<SocketAddr>,
        egress_blocked: bool,
        batch_size: usize,
    ) -> Self {
        crate::metrics::slots(sessions, resolutions);
        Self {
            sessions: Pool::new(SlotKind::Session, sessions),
            resolutions: Pool::new(SlotKind::Resolution, resolutions),
            pacer: Arc::new(Pacer::default()),
            bind,
            resolvers_override,
            egress_blocked,
            batch_size: batch_size.max(1),
            scans: Mutex::new(HashMap::new()),
        }
    }

    /// The slots and permits of `kind`.
    pub fn pool(&self, kind: SlotKind) -> &Pool {
        match kind {
            SlotKind::Session => &self.sessions,
            SlotKind::Resolution => &self.resolutions,
        }
    }

    /// The scan's context, built once per scan id (and rebuilt only if the
    /// scan's options differ from the cached ones).
    fn scan(&self, scan_id: &str, options: &ScanOptions) -> Result<Arc<ScanContext>, RunError> {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(context) = scans.get(scan_id) {
            if context.options == *options {
                return Ok(context.clone());
            }
        }
        let exclusions = options.exclusion_list()?;
        let prober = prober_of(options, self.bind, &self.resolvers_override)?.with_pace(Arc::new(
            PacedSessions {
                pacer: self.pacer.clone(),
                limits: limits(options),
            },
        ));
        let context = Arc::new(ScanContext {
            options: options.clone(),
            prober,
            resolver: OnceLock::new(),
            exclusions,
            retry: retry_policy(options),
            limits: limits(options),
        });
        if scans.len() >= MAX_CACHED_SCANS && !scans.contains_key(scan_id) {
            // Old scans are rare once a newer one runs: start afresh.
            scans.clear();
        }
        scans.insert(scan_id.to_string(), context.clone());
        Ok(context)
    }

    fn resolver(&self, context: &ScanContext) -> Result<MxResolver, RunError> {
        context
            .resolver
            .get_or_init(|| {
                let dns = dns_config(&context.options, &self.resolvers_override)
                    .map_err(|e| e.to_string())?;
                MxResolver::new(&dns).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(RunError::Resolver)
    }

    /// Run `task` to the end (or until `cancel`), queueing its batches;
    /// `claim` holds one slot per item and frees each as its item ends.
    pub async fn run(
        &self,
        task: TaskSpec,
        uplink: UplinkSender,
        cancel: CancellationToken,
        claim: Claim,
    ) -> RunEnd {
        let context = match self.scan(&task.scan_id, &task.options) {
            Ok(context) => context,
            Err(error) => return RunEnd::Failed(error),
        };
        let lease = task.lease.clone();
        let total = task.work.len();
        info!(task = %lease.task_id, epoch = lease.epoch, scan = %task.scan_id,
            kind = task.work.kind(), items = total, "task started");
        let permits = self.pool(task.work.slot_kind()).permits.clone();
        let uplink = match task.work {
            // New probe tasks are planned from these: they go first.
            Work::Resolve { .. } => uplink.ahead(),
            Work::Probe { .. } => uplink,
        };
        let (items, resolver): (Vec<Item>, _) = match task.work {
            Work::Resolve { domains } => match self.resolver(&context) {
                Ok(resolver) => (
                    domains.into_iter().map(Item::Resolve).collect(),
                    Some(resolver),
                ),
                Err(error) => return RunEnd::Failed(error),
            },
            Work::Probe { targets } => (
                targets
                    .into_iter()
                    .map(|t| Item::Probe(t.ip, t.mx_names))
                    .collect(),
                None,
            ),
        };
        let stamp = Stamp {
            scan: task.scan_id,
            vantage: task.vantage,
            egress_blocked: self.egress_blocked,
            prober: context.prober.clone(),
            resolver,
            exclusions: context.exclusions.clone(),
            retry: context.retry,
            permits,
            gate: Gate {
                sessions: self.sessions.clone(),
                pacer: self.pacer.clone(),
                limits: context.limits,
            },
        };
        let end = self
            .run_items(lease.clone(), items, Arc::new(stamp), uplink, cancel, claim)
            .await;
        match &end {
            RunEnd::Finished { items } => {
                info!(task = %lease.task_id, epoch = lease.epoch, items, "task finished")
            }
            RunEnd::Cancelled => {
                info!(task = %lease.task_id, epoch = lease.epoch, "task cancelled")
            }
            RunEnd::Failed(_) => {}
        }
        end
    }

    async fn run_items(
        &self,
        lease: Lease,
        items: Vec<Item>,
        stamp: Arc<Stamp>,
        uplink: UplinkSender,
        cancel: CancellationToken,
        mut claim: Claim,
    ) -> RunEnd {
        let mut batcher = Batcher::new(lease, self.batch_size, MAX_BATCH_BYTES);
        let partial = stamp.resolver.is_none().then_some(PARTIAL_BATCH_AFTER);
        let mut pending = items.into_iter().peekable();
        let mut running = JoinSet::new();
        let mut done = 0;
        loop {
            let more = pending.peek().is_some();
            if !more && running.is_empty() {
                break;
            }
            let due = partial.and_then(|after| batcher.due(after));
            let flush_due = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => return RunEnd::Cancelled,
                () = flush_due => {
                    if let Some(batch) = batcher.flush() {
                        tokio::select! {
                            () = cancel.cancelled() => return RunEnd::Cancelled,
                            sent = uplink.send(batch) => if sent.is_err() {
                                return RunEnd::Cancelled;
                            },
                        }
                    }
                }
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    claim.release_one();
                    let json = match joined {
                        Ok(Some(json)) => json,
                        Ok(None) => continue,
                        Err(error) => {
                            warn!(%error, "a task item panicked; its record is missing");
                            continue;
                        }
                    };
                    done += 1;
                    let full = if pending.peek().is_none() && running.is_empty() {
                        batcher.push_last(json)
                    } else {
                        batcher.push(json)
                    };
                    if let Some(batch) = full {
                        tokio::select! {
                            () = cancel.cancelled() => return RunEnd::Cancelled,
                            sent = uplink.send(batch) => if sent.is_err() {
                                return RunEnd::Cancelled;
                            },
                        }
                    }
                }
                permit = stamp.permits.clone().acquire_owned(), if more => {
                    let Ok(permit) = permit else {
                        return RunEnd::Cancelled;
                    };
                    if let Some(item) = pending.next() {
                        let stamp = stamp.clone();
                        running.spawn(async move { item.run(&stamp, permit).await });
                    }
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => RunEnd::Cancelled,
            sent = uplink.send(batcher.finish()) => match sent {
                Ok(()) => RunEnd::Finished { items: done },
                Err(_) => RunEnd::Cancelled,
            },
        }
    }
}

mod item;

#[cfg(test)]
mod tests;
