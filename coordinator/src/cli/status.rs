//! `mxscope status` and `mxscope cancel`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use mxscope_common::security_dns::ResolverCheck;
use mxscope_coordinator::service::{Coordinator, ScanStatus, TaskCounts};

use super::progress::ScanProgress;
use serde_json::json;

use super::{open_source, Source};
use crate::SourceArgs;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The scan to show (default: every scan).
    scan: Option<String>,
    /// Keep watching the scan with a progress bar until it ends.
    #[arg(long, requires = "scan")]
    watch: bool,
    /// Print JSON (one object per scan) instead of text.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The scan to cancel.
    scan: String,
    #[command(flatten)]
    source: SourceArgs,
}

async fn fetch(source: &mut Source, scan: Option<&str>) -> anyhow::Result<Vec<ScanStatus>> {
    Ok(match (source, scan) {
        (Source::Remote(client), Some(id)) => vec![client.status(id).await?],
        (Source::Remote(client), None) => client.list().await?,
        (Source::Local(coordinator), Some(id)) => vec![coordinator.status(id)?],
        (Source::Local(coordinator), None) => coordinator.list()?,
    })
}

pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let mut source = open_source(&args.source).await?;
    if args.watch {
        let Some(scan) = args.scan.as_deref() else {
            bail!("--watch needs a scan id");
        };
        return watch(&mut source, scan).await;
    }
    let scans = fetch(&mut source, args.scan.as_deref()).await?;
    if scans.is_empty() && !args.json {
        println!("no scans");
    }
    for status in &scans {
        let checks = match &source {
            Source::Local(coordinator) => resolver_checks(coordinator, status),
            Source::Remote(_) => BTreeMap::new(),
        };
        if args.json {
            let mut value = to_json(status);
            if !checks.is_empty() {
                value["resolver_checks"] = json!(checks);
            }
            println!("{value}");
        } else {
            println!("{}", text(status));
            for (vantage, check) in &checks {
                if check.usable {
                    println!(
                        "  vantage {vantage}: DNSSEC resolver check: {}",
                        check.detail
                    );
                } else {
                    println!("  vantage {vantage}: Warning: {}", check.detail);
                }
            }
        }
    }
    Ok(())
}

/// Domain records read at most to find the resolver self-checks.
const MAX_CHECK_RECORDS: usize = 100_000;

/// The DNSSEC resolver self-check of each vantage of a scan in a data
/// directory, from the domain records that carry it (a failed one wins);
/// reads at most [`MAX_CHECK_RECORDS`] records.
fn resolver_checks(
    coordinator: &Coordinator,
    status: &ScanStatus,
) -> BTreeMap<String, ResolverCheck> {
    let mut checks: BTreeMap<String, ResolverCheck> = BTreeMap::new();
    let records = coordinator.store().domain_records(&status.meta.id);
    for record in records.take(MAX_CHECK_RECORDS).flatten() {
        let (Some(vantage), Some(check)) = (
            record.vantage,
            record.security.and_then(|s| s.resolver_check),
        ) else {
            continue;
        };
        let keep = checks.get(&vantage).is_some_and(|kept| !kept.usable);
        if !keep {
            checks.insert(vantage, check);
        }
    }
    checks
}

pub(crate) async fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    let status = match open_source(&args.source).await? {
        Source::Remote(mut client) => client.cancel(&args.scan).await?,
        Source::Local(coordinator) => coordinator.cancel(&args.scan).await?,
    };
    println!("{}", text(&status));
    Ok(())
}

async fn watch(source: &mut Source, scan: &str) -> anyhow::Result<()> {
    let bar = ScanProgress::new();
    loop {
        let status = fetch(source, Some(scan)).await?.remove(0);
        bar.update(&status);
        if status.meta.state.as_str() != "running" {
            bar.finish();
            println!("{}", text(&status));
            return Ok(());
        }
        if let Source::Local(_) = source {
            bar.finish();
            println!("(offline view of a data directory: it does not change while you watch)");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn counts_json(c: &TaskCounts) -> serde_json::Value {
    json!({"total": c.total, "pending": c.pending, "leased": c.leased, "done": c.done, "failed": c.failed})
}

/// The machine-readable status.
pub(crate) fn to_json(s: &ScanStatus) -> serde_json::Value {
    json!({
        "scan": s.meta.id,
        "name": s.meta.name,
        "labels": s.meta.labels,
        "vantages": s.meta.vantages,
        "state": s.meta.state.as_str(),
        "created_unix_ms": s.meta.created_ms,
        "finished_unix_ms": s.meta.finished_ms,
        "domains": s.meta.domains,
        "resolve_tasks": counts_json(&s.resolve),
        "probe_tasks": counts_json(&s.probe),
        "domain_records": s.domain_records,
        "target_records": s.target_records,
        "failed_items": s.failed_items,
    })
}

/// The readable status.
pub(crate) fn text(s: &ScanStatus) -> String {
    let labels: Vec<String> = s
        .meta
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{} {:?} [{}] {}: {} domains, vantages {}; resolve {}/{} tasks, probe {}/{} tasks; \
         {} domain records, {} target records{}",
        s.meta.id,
        s.meta.name,
        labels.join(","),
        s.meta.state.as_str(),
        s.meta.domains,
        s.meta.vantages.join(","),
        s.resolve.done + s.resolve.failed,
        s.resolve.total,
        s.probe.done + s.probe.failed,
        s.probe.total,
        s.domain_records,
        s.target_records,
        if s.failed_items > 0 {
            format!(", {} items failed", s.failed_items)
        } else {
            String::new()
        }
    )
}
