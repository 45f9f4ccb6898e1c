//! `mxscope status` and `mxscope cancel`.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use mxscope_coordinator::service::{ScanStatus, TaskCounts};

use super::progress::ScanProgress;
use serde_json::json;

use super::{blocking, open_source, open_source_as, Access, Source};
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
        (Source::Local(coordinator), Some(id)) => vec![blocking(|| coordinator.status(id))?],
        (Source::Local(coordinator), None) => blocking(|| coordinator.list())?,
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
        if args.json {
            println!("{}", to_json(status));
        } else {
            println!("{}", text(status));
            for line in tally_lines(status) {
                println!("  {line}");
            }
        }
    }
    Ok(())
}

/// Per vantage: its politeness line and its DNSSEC resolver self-check
/// (a `Warning:` when the resolvers cannot support validation).
fn tally_lines(status: &ScanStatus) -> Vec<String> {
    let mut lines = Vec::new();
    for (vantage, tally) in &status.tallies {
        lines.push(format!("vantage {vantage}: {}", tally.politeness.summary()));
        match &tally.resolver_check {
            Some(check) if check.usable => lines.push(format!(
                "vantage {vantage}: DNSSEC resolver check: {}",
                check.detail
            )),
            Some(check) => lines.push(format!("vantage {vantage}: Warning: {}", check.detail)),
            None => {}
        }
    }
    lines
}

pub(crate) async fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    // Cancelling writes: a data directory is opened as its writer.
    let status = match open_source_as(&args.source, Access::Write).await? {
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
    json!({"total": c.total, "pending": c.pending, "leased": c.leased, "done": c.done, "failed": c.failed, "items": c.items})
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
        "storage_problem": s.storage_problem,
        "politeness": s.tallies.iter().map(|(v, t)| (v.clone(), json!(t.politeness))).collect::<serde_json::Map<_, _>>(),
        "resolver_checks": s.tallies.iter().filter_map(|(v, t)| Some((v.clone(), json!(t.resolver_check.as_ref()?)))).collect::<serde_json::Map<_, _>>(),
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
    ) + &s
        .storage_problem
        .as_ref()
        .map(|p| format!("\nstorage: {p}"))
        .unwrap_or_default()
}
