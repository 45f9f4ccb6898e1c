//! `mxscope export`: a scan's records as JSON Lines or CSV, streamed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mxscope_common::{snake, Record, VersionSupport};
use mxscope_coordinator::grpc::client::ClientError;
use mxscope_coordinator::report::parquet::ParquetExport;

use super::{blocking, open_source, Source};
use crate::SourceArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// One JSON record per line (the record layout: `common/src/record/`).
    Jsonl,
    /// One row per record, flat columns (`kind` says domain or target).
    Csv,
    /// CSV, one row per (target, finding): the known weaknesses of each
    /// server with their evidence, CVE and CWE — a list to notify operators
    /// from (the target's MX names lead to its domains).
    Findings,
    /// Two Parquet files in the --out directory (zstd): domains.parquet and
    /// targets.parquet, for DuckDB, pandas or Spark (columns: docs/parquet.md).
    Parquet,
}

/// Columns of `--format findings`, in order.
pub(crate) const FINDINGS_HEADER: &[&str] = &[
    "scan", "vantage", "ip", "mx_names", "finding", "severity", "title", "evidence", "cve", "cwe",
];

/// The rows of one record for `--format findings` (none for a domain).
pub(crate) fn finding_rows(record: &Record) -> Vec<Vec<String>> {
    let Record::Target(t) = record else {
        return Vec::new();
    };
    t.findings
        .iter()
        .map(|f| {
            vec![
                t.scan.clone().unwrap_or_default(),
                t.vantage.clone().unwrap_or_default(),
                t.ip.to_string(),
                t.mx_names.join(" "),
                f.id.to_string(),
                snake(&f.severity),
                f.id.definition().title.to_string(),
                f.evidence.clone(),
                f.cve.join(" "),
                f.cwe.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The scan to export.
    scan: String,
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Write here instead of standard output (written whole or not at all);
    /// a directory for `--format parquet`.
    #[arg(long, value_name = "FILE|DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
}

/// CSV columns, in order.
pub(crate) const CSV_HEADER: &[&str] = &[
    "kind",
    "scan",
    "vantage",
    "domain",
    "dns_status",
    "null_mx",
    "implicit_mx",
    "mx",
    "ip",
    "port",
    "mx_names",
    "outcome",
    "phase",
    "detail",
    "tls_version",
    "cipher",
    "group",
    "verification",
    "name_match",
    "key_type",
    "key_bits",
    "key_curve",
    "not_after",
    "sha256",
    "ssl3",
    "tls1_0",
    "tls1_1",
    "tls1_2",
    "tls1_3",
    "anomalies",
];

fn support(s: VersionSupport) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One CSV row for a record.
pub(crate) fn csv_row(record: &Record) -> Vec<String> {
    let mut row = vec![String::new(); CSV_HEADER.len()];
    let mut set = |column: &str, value: String| {
        if let Some(i) = CSV_HEADER.iter().position(|c| *c == column) {
            row[i] = value;
        }
    };
    match record {
        Record::Domain(d) => {
            set("kind", "domain".into());
            set("scan", d.scan.clone().unwrap_or_default());
            set("vantage", d.vantage.clone().unwrap_or_default());
            set("domain", d.domain.clone());
            set("dns_status", snake(&d.dns.status));
            set("null_mx", d.dns.null_mx.to_string());
            set("implicit_mx", d.dns.implicit_mx.to_string());
            let mx: Vec<String> = d
                .dns
                .mx
                .iter()
                .map(|m| {
                    let ips: Vec<String> = m.addresses.iter().map(ToString::to_string).collect();
                    format!("{} {} {}", m.preference, m.exchange, ips.join(","))
                })
                .collect();
            set("mx", mx.join("; "));
            set("detail", d.dns.error.clone().unwrap_or_default());
        }
        Record::Target(t) => {
            set("kind", "target".into());
            set("scan", t.scan.clone().unwrap_or_default());
            set("vantage", t.vantage.clone().unwrap_or_default());
            set("ip", t.ip.to_string());
            set("port", t.port.to_string());
            set("mx_names", t.mx_names.join(" "));
            set("outcome", t.outcome.as_str().into());
            set("phase", snake(&t.phase));
            set("detail", t.detail.clone().unwrap_or_default());
            if let Some(tls) = &t.tls {
                set("tls_version", tls.version.clone());
                set("cipher", tls.cipher.clone());
                set("group", tls.group.clone().unwrap_or_default());
                set("verification", tls.verification.as_str().into());
                let names: Vec<String> = tls
                    .name_match
                    .iter()
                    .map(|(n, ok)| format!("{n}={ok}"))
                    .collect();
                set("name_match", names.join(" "));
                if let Some(leaf) = tls.chain.first() {
                    set("key_type", leaf.key.key_type.clone());
                    set(
                        "key_bits",
                        leaf.key.bits.map(|b| b.to_string()).unwrap_or_default(),
                    );
                    set("key_curve", leaf.key.curve.clone().unwrap_or_default());
                    set("not_after", leaf.not_after.clone());
                    set("sha256", leaf.sha256.clone());
                }
            }
            let p = &t.protocols;
            set("ssl3", support(p.ssl3));
            set("tls1_0", support(p.tls1_0));
            set("tls1_1", support(p.tls1_1));
            set("tls1_2", support(p.tls1_2));
            set("tls1_3", support(p.tls1_3));
            let anomalies: Vec<String> = t.anomalies.iter().map(snake).collect();
            set("anomalies", anomalies.join(" "));
        }
    }
    row
}

/// Where records go.
enum Sink {
    Jsonl(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Findings(Box<csv::Writer<Box<dyn Write>>>),
    Parquet(Box<ParquetExport>),
}

impl Sink {
    fn write(&mut self, record: &Record) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(out) => {
                out.write_all(record.to_json().as_bytes())?;
                out.write_all(b"\n")?;
            }
            Self::Csv(out) => out.write_record(csv_row(record))?,
            Self::Findings(out) => {
                for row in finding_rows(record) {
                    out.write_record(row)?;
                }
            }
            Self::Parquet(out) => out.add(record)?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(mut out) => out.flush()?,
            Self::Csv(mut out) | Self::Findings(mut out) => out.flush()?,
            Self::Parquet(out) => {
                out.finish()?;
            }
        }
        Ok(())
    }
}

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<()> {
    if let Format::Parquet = args.format {
        return parquet(args).await;
    }
    let mut source = open_source(&args.source).await?;
    // Write to a temporary file beside --out and rename at the end, so a
    // failed export leaves nothing half-written.
    let (out, temp): (Box<dyn Write>, Option<PathBuf>) = match &args.out {
        Some(path) => {
            let temp = path.with_extension("partial");
            let file = blocking(|| std::fs::File::create(&temp))
                .with_context(|| format!("creating {}", temp.display()))?;
            (Box::new(std::io::BufWriter::new(file)), Some(temp))
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ),
    };
    let mut sink = match args.format {
        Format::Jsonl => Sink::Jsonl(out),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_HEADER)?;
            Sink::Csv(Box::new(w))
        }
        // (Parquet was written by `parquet` above.)
        Format::Findings | Format::Parquet => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(FINDINGS_HEADER)?;
            Sink::Findings(Box::new(w))
        }
    };
    let mut count = 0u64;
    let result = stream(&mut source, &args.scan, &mut sink, &mut count).await;
    match (result, temp, &args.out) {
        (Err(e), Some(temp), _) => {
            let _ = std::fs::remove_file(temp);
            Err(e)
        }
        (Err(e), None, _) => Err(e),
        (Ok(()), Some(temp), Some(path)) => {
            blocking(|| std::fs::rename(&temp, path))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{count} records written to {}", path.display());
            Ok(())
        }
        (Ok(()), _, _) => Ok(()),
    }
}

/// `--format parquet --out DIR`: both files, or (on any error) neither.
async fn parquet(args: ExportArgs) -> anyhow::Result<()> {
    let Some(dir) = args.out.clone() else {
        anyhow::bail!(
            "--format parquet writes two files (domains.parquet, targets.parquet): \
             say where with --out DIR"
        );
    };
    let mut source = open_source(&args.source).await?;
    let export = blocking(|| ParquetExport::create(&dir))
        .with_context(|| format!("writing into {}", dir.display()))?;
    let mut sink = Sink::Parquet(Box::new(export));
    let mut count = 0u64;
    let result = stream(&mut source, &args.scan, &mut sink, &mut count).await;
    if let Err(e) = result {
        for name in ["domains.parquet.tmp", "targets.parquet.tmp"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        return Err(e);
    }
    eprintln!(
        "{count} records written to {} and {}",
        dir.join("domains.parquet").display(),
        dir.join("targets.parquet").display()
    );
    Ok(())
}

/// Every record of `scan` into `sink`, then finish it.
async fn stream(
    source: &mut Source,
    scan: &str,
    sink: &mut Sink,
    count: &mut u64,
) -> anyhow::Result<()> {
    let result = async {
        match source {
            Source::Remote(client) => {
                client
                    .stream_results(scan, |r| {
                        *count += 1;
                        sink.write(&r)
                            .map_err(|e| ClientError::Invalid(e.to_string()))
                    })
                    .await?;
            }
            Source::Local(coordinator) => blocking(|| {
                coordinator.status(scan)?;
                let store = coordinator.store();
                for record in store.domain_records(scan) {
                    *count += 1;
                    sink.write(&Record::Domain(record?))?;
                }
                for record in store.target_records(scan) {
                    *count += 1;
                    sink.write(&Record::Target(record?))?;
                }
                anyhow::Ok(())
            })?,
        }
        anyhow::Ok(())
    }
    .await;
    result?;
    let finished = std::mem::replace(sink, Sink::Jsonl(Box::new(std::io::sink())));
    blocking(|| finished.finish())
}
