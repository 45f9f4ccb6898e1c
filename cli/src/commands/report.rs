//! `mxscope report`, `mxscope compare` and `mxscope vantages`: the report
//! engine over a running coordinator (records streamed twice over the admin
//! API) or a data directory read offline (store iterators).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use mxscope_common::Record;
use mxscope_coordinator::grpc::client::ClientError;
use mxscope_coordinator::model::ScanState;
use mxscope_coordinator::report::model::{DomainRow, ScanInfo, ScanReport, VantagesReport};
use mxscope_coordinator::report::render::html;
use mxscope_coordinator::report::render::{self, DomainCsv, DomainJson};
use mxscope_coordinator::report::vantages::dns::DomainMerge;
use mxscope_coordinator::report::{self, Aggregator, VantageComparer};
use mxscope_coordinator::service::ScanStatus;

use super::{blocking, open_source, Source};
use crate::SourceArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Readable text: the headline sentence, then aligned tables.
    Text,
    /// Markdown tables.
    Markdown,
    /// The report model as pretty JSON (with --domains: {"domains":[…],"report":{…}}).
    Json,
    /// The per-domain table (one row per vantage and domain).
    Csv,
    /// A self-contained HTML page.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ViewFormat {
    Text,
    Markdown,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum By {
    /// One report section per vantage of the scan.
    Vantage,
}

#[derive(Debug, Args)]
#[command(after_help = "Formats:\n  \
    text, markdown, html  the headline and the distributions\n  \
    json                  the report model; with --domains, one JSON document\n                        \
    {\"domains\":[row, …],\"report\":{…}} whose rows are streamed one per line\n  \
    csv                   the per-domain table: vantage,domain,dns_status,mx_count,covered,\n                        \
    primary_covered,best_outcome,worst_outcome\n\n\
    Host statuses in rows: an outcome name, `not_probed` (addresses without a result) or\n\
    `no_address`. A scan still running is reported with the note \"partial results\".")]
pub(crate) struct ReportArgs {
    /// The scan to report on.
    scan: String,
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Write here instead of standard output (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The vantage to report (default: the scan's first, by name).
    #[arg(long, value_name = "VANTAGE", conflicts_with = "by")]
    vantage: Option<String>,
    /// One report per vantage.
    #[arg(long, value_enum)]
    by: Option<By>,
    /// With --format json: include the per-domain table (see below).
    #[arg(long)]
    domains: bool,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The scans to compare (two or more), one column each.
    #[arg(required = true, num_args = 2..)]
    scans: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: ViewFormat,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The vantage to compare (default: each scan's first, by name).
    #[arg(long, value_name = "VANTAGE")]
    vantage: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Classes of a target (IP probed from two or more vantages):\n  \
    starttls_stripped_on_path, tls_intercepted (one side's chain verifies for the MX name or\n  \
    matches TLSA, the other's does not, another key), certificate_differs (rotation, pools),\n  \
    reachability_differs, rate_limited, dane_differs, tlsa_differs, other_difference.\n\
    Classes of a domain (resolved from two or more vantages):\n  \
    dns_status_differs, mx_differs, address_differs (with a note when an address is not public\n  \
    or outside every /24 or /48 the other side saw), dnssec_differs, mta_sts_differs.\n\
    Targets probed from one vantage only are listed with the domains that led there.\n\
    With --data-dir memory grows with targets, not domains (the per-vantage domain streams\n\
    are merge-joined); over --coordinator the domain records are held."
)]
pub(crate) struct VantagesArgs {
    /// The scan whose vantages to compare.
    scan: String,
    #[arg(long, value_enum, default_value = "text")]
    format: ViewFormat,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
}

// ---- output ----

/// Standard output, or a temporary file renamed onto --out on success.
struct Output {
    temp: Option<PathBuf>,
    path: Option<PathBuf>,
}

impl Output {
    fn open(path: Option<&Path>) -> anyhow::Result<(Box<dyn Write>, Self)> {
        match path {
            Some(path) => {
                let temp = path.with_extension("partial");
                let file = std::fs::File::create(&temp)
                    .with_context(|| format!("creating {}", temp.display()))?;
                Ok((
                    Box::new(std::io::BufWriter::new(file)),
                    Self {
                        temp: Some(temp),
                        path: Some(path.to_path_buf()),
                    },
                ))
            }
            None => Ok((
                Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
                Self {
                    temp: None,
                    path: None,
                },
            )),
        }
    }

    /// Renames the file into place, or removes it after an error.
    fn commit(self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        match (result, self.temp, self.path) {
            (Err(e), Some(temp), _) => {
                let _ = std::fs::remove_file(temp);
                Err(e)
            }
            (Ok(()), Some(temp), Some(path)) => {
                std::fs::rename(&temp, &path)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("report written to {}", path.display());
                Ok(())
            }
            (result, _, _) => result,
        }
    }
}

fn write_all(mut out: Box<dyn Write>, text: &str) -> anyhow::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

// ---- loading ----

async fn status(source: &mut Source, scan: &str) -> anyhow::Result<ScanStatus> {
    let status = match source {
        Source::Remote(client) => client.status(scan).await?,
        Source::Local(coordinator) => blocking(|| coordinator.status(scan))?,
    };
    if status.meta.state == ScanState::Running {
        eprintln!("mxscope: note: scan {scan} is still running: partial results");
    }
    Ok(status)
}

/// The vantages to report: `--vantage V`, all, or the first by name.
fn pick_vantages(info: &ScanInfo, wanted: Option<&str>, all: bool) -> anyhow::Result<Vec<String>> {
    if let Some(v) = wanted {
        if !info.vantages.iter().any(|known| known == v) {
            bail!(
                "scan {} has no vantage {v:?} (its vantages: {})",
                info.id,
                info.vantages.join(", ")
            );
        }
        return Ok(vec![v.to_string()]);
    }
    if all {
        return Ok(info.vantages.clone());
    }
    match info.vantages.first() {
        Some(first) => Ok(vec![first.clone()]),
        None => bail!("scan {} has no vantage", info.id),
    }
}

/// Runs the engine over one scan: two domain passes and one target pass.
async fn build_report(
    source: &mut Source,
    info: ScanInfo,
    vantages: &[String],
    mut on_row: impl FnMut(DomainRow) -> anyhow::Result<()>,
) -> anyhow::Result<ScanReport> {
    let scan = info.id.clone();
    match source {
        Source::Local(coordinator) => {
            let store = coordinator.store();
            let domains = || {
                store
                    .domain_records(&scan)
                    .map(|r| r.map_err(anyhow::Error::from))
            };
            let targets = store
                .target_records(&scan)
                .map(|r| r.map_err(anyhow::Error::from));
            blocking(|| report::scan_report(info, vantages, domains, targets, on_row))
        }
        Source::Remote(client) => {
            let mut agg = Aggregator::new(info, vantages);
            client
                .stream_results(&scan, |record| {
                    match record {
                        Record::Domain(d) => agg.add_domain(&d),
                        Record::Target(t) => agg.add_target(&t),
                    }
                    Ok(())
                })
                .await?;
            let mut evaluated = agg.evaluate();
            client
                .stream_results(&scan, |record| {
                    if let Record::Domain(d) = record {
                        for row in evaluated.add_domain(&d) {
                            on_row(row).map_err(|e| ClientError::Invalid(format!("{e:#}")))?;
                        }
                    }
                    Ok(())
                })
                .await?;
            Ok(evaluated.finish(vantages))
        }
    }
}

/// The vantages report of a scan. Offline: one pass over the target
/// records, then the per-vantage domain streams merge-joined by domain
/// (memory grows with targets, not domains). Over the admin API the
/// records come in one stream and the domain records are held.
async fn compare_vantages(source: &mut Source, info: ScanInfo) -> anyhow::Result<VantagesReport> {
    let scan = info.id.clone();
    match source {
        Source::Local(coordinator) => {
            let store = coordinator.store();
            let streams = info
                .vantages
                .iter()
                .map(|v| store.domain_records_of(&scan, v))
                .collect();
            let targets = store.target_records(&scan);
            Ok(blocking(|| {
                report::vantages_report_joined(info, streams, targets)
            })?)
        }
        Source::Remote(client) => {
            let vantages = info.vantages.clone();
            let mut comparer = VantageComparer::new(info);
            client
                .stream_targets(&scan, |t| {
                    comparer.add_target(&t);
                    Ok(())
                })
                .await?;
            // One stream per vantage, merge-joined as they arrive.
            let mut streams = Vec::new();
            for vantage in &vantages {
                streams.push(client.clone().domains_of(&scan, vantage).await?);
            }
            let mut merge = DomainMerge::new(streams.len());
            for (i, stream) in streams.iter_mut().enumerate() {
                merge.set(i, stream.next().await?);
            }
            while let Some((group, advance)) = merge.next_group() {
                for i in advance {
                    if let Some(stream) = streams.get_mut(i) {
                        merge.set(i, stream.next().await?);
                    }
                }
                comparer.add_domain_group(group);
            }
            Ok(comparer.finish())
        }
    }
}

/// The main report, with the agreement of the scan's vantages when it has
/// two or more.
async fn build_report_with_agreement(
    source: &mut Source,
    info: ScanInfo,
    vantages: &[String],
    on_row: impl FnMut(DomainRow) -> anyhow::Result<()>,
) -> anyhow::Result<ScanReport> {
    let several = info.vantages.len() >= 2;
    let mut report = build_report(source, info.clone(), vantages, on_row).await?;
    if several {
        let compared = compare_vantages(source, info).await?;
        report.agreement = Some(report::vantages::agreement::agreement(&compared));
    }
    Ok(report)
}

// ---- commands ----

pub(crate) async fn run(args: ReportArgs) -> anyhow::Result<()> {
    if args.domains && args.format != ReportFormat::Json {
        bail!(
            "--domains goes with --format json (--format csv always writes the per-domain table)"
        );
    }
    let mut source = open_source(&args.source).await?;
    let status = status(&mut source, &args.scan).await?;
    let info = report::scan_info(&status.meta);
    let vantages = pick_vantages(&info, args.vantage.as_deref(), args.by.is_some())?;
    let (out, output) = Output::open(args.out.as_deref())?;
    let result = async {
        match args.format {
            ReportFormat::Csv => {
                let mut csv = DomainCsv::new(out)?;
                build_report(&mut source, info, &vantages, |row| Ok(csv.write(&row)?)).await?;
                csv.finish()?;
            }
            ReportFormat::Json if args.domains => {
                let mut json = DomainJson::new(out)?;
                let report = build_report_with_agreement(&mut source, info, &vantages, |row| {
                    Ok(json.write(&row)?)
                })
                .await?;
                json.finish(&report)?;
            }
            format => {
                let report =
                    build_report_with_agreement(&mut source, info, &vantages, |_| Ok(())).await?;
                let text = match format {
                    ReportFormat::Markdown => render::scan_markdown(&report),
                    ReportFormat::Json => render::json(&report)? + "\n",
                    ReportFormat::Html => html::render_scan(&report),
                    _ => render::scan_text(&report),
                };
                write_all(out, &text)?;
            }
        }
        Ok(())
    }
    .await;
    output.commit(result)
}

pub(crate) async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let mut source = open_source(&args.source).await?;
    let mut reports = Vec::with_capacity(args.scans.len());
    for scan in &args.scans {
        let status = status(&mut source, scan).await?;
        let info = report::scan_info(&status.meta);
        let vantages = pick_vantages(&info, args.vantage.as_deref(), false)?;
        reports.push(build_report_with_agreement(&mut source, info, &vantages, |_| Ok(())).await?);
    }
    let comparison = report::compare(reports);
    let text = match args.format {
        ViewFormat::Text => render::comparison_text(&comparison),
        ViewFormat::Markdown => render::comparison_markdown(&comparison),
        ViewFormat::Json => render::json(&comparison)? + "\n",
        ViewFormat::Html => html::render_comparison(&comparison),
    };
    let (out, output) = Output::open(args.out.as_deref())?;
    let result = write_all(out, &text);
    output.commit(result)
}

pub(crate) async fn vantages(args: VantagesArgs) -> anyhow::Result<()> {
    let mut source = open_source(&args.source).await?;
    let status = status(&mut source, &args.scan).await?;
    let info = report::scan_info(&status.meta);
    if info.vantages.len() < 2 {
        eprintln!(
            "mxscope: note: scan {} was measured from one vantage ({}): nothing to compare",
            info.id,
            info.vantages.join(", ")
        );
    }
    let report: VantagesReport = compare_vantages(&mut source, info).await?;
    let text = match args.format {
        ViewFormat::Text => render::vantages_text(&report),
        ViewFormat::Markdown => render::vantages_markdown(&report),
        ViewFormat::Json => render::json(&report)? + "\n",
        ViewFormat::Html => html::render_vantages(&report),
    };
    let (out, output) = Output::open(args.out.as_deref())?;
    let result = write_all(out, &text);
    output.commit(result)
}
