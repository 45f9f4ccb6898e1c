//! The `mxscope` subcommands.

pub(crate) mod exclude;
pub(crate) mod export;
pub(crate) mod list;
pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod submit;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
pub(crate) use mxscope_common::cli::args::read_secret;
use mxscope_common::options::millis;
use mxscope_common::politeness::exclusions::Exclusions;
use mxscope_coordinator::grpc::client::AdminClient;
use mxscope_coordinator::model::ScanOptions;
use mxscope_coordinator::service::{Coordinator, CoordinatorConfig};
use mxscope_coordinator::store::Store;

pub(crate) use mxscope_common::units::parse_duration;

use crate::{CoordinatorArgs, ScanOptionArgs, SourceArgs};

/// `key=value`.
pub(crate) fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE (e.g. country=IT)"))?;
    if key.trim().is_empty() {
        return Err(format!("{text:?} has an empty key"));
    }
    Ok((key.trim().to_string(), value.trim().to_string()))
}

/// Read a PEM file whole.
pub(crate) fn read_pem(path: Option<&PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    path.map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

/// An admin connection to `--coordinator` with the command line's token and TLS files.
pub(crate) async fn connect(args: &CoordinatorArgs) -> anyhow::Result<AdminClient> {
    let token = args.connect.token()?;
    let tls = args.connect.tls()?;
    Ok(AdminClient::connect_with(args.url()?, token.as_deref(), &tls).await?)
}

/// The scan options of the command line.
pub(crate) fn options(args: &ScanOptionArgs) -> anyhow::Result<ScanOptions> {
    Ok(ScanOptions {
        exclusions: match &args.exclude {
            Some(path) => read_exclusions(path)?.to_lines(),
            None => Vec::new(),
        },
        retry_attempts: args.retry_attempts,
        retry_delay_ms: millis(args.retry_delay),
        ip_gap_ms: Some(millis(args.ip_gap)),
        network_rate_milli: Some(milli(args.network_rate)),
        vantage_rate_milli: milli(args.vantage_rate),
        ..args.probe.scan_options()?
    })
}

/// Sessions per second in thousandths (what the options carry).
fn milli(rate: f64) -> u32 {
    (rate * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A rate in sessions per second: 0 (no limit) or 0.001 to 1,000,000.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of sessions per second"))?;
    if rate == 0.0 || (0.001..=1_000_000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{text}: a rate is 0 (no limit) or 0.001 to 1000000 per second"
        ))
    }
}

/// An exclusion list file; a bad line is an error naming the file, the line
/// and the reason.
pub(crate) fn read_exclusions(path: &Path) -> anyhow::Result<Exclusions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading exclusion list {}", path.display()))?;
    Exclusions::parse(&text).map_err(|e| anyhow::anyhow!("exclusion list {}: {e}", path.display()))
}

/// Scans, read from a coordinator or from a data directory.
pub(crate) enum Source {
    Remote(AdminClient),
    Local(Arc<Coordinator>),
}

/// Open the source the options name, to read it.
pub(crate) async fn open_source(args: &SourceArgs) -> anyhow::Result<Source> {
    open_source_as(args, Access::Read).await
}

/// How a data directory is opened offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// As a reader: nothing written (`status`, `report`, `export`, …).
    Read,
    /// As its writer (`cancel`): upgraded to this format, cleaned up.
    Write,
}

/// Open the source the options name, a data directory with `access`.
pub(crate) async fn open_source_as(args: &SourceArgs, access: Access) -> anyhow::Result<Source> {
    match (&args.remote.coordinator, &args.data_dir) {
        (Some(_), _) => Ok(Source::Remote(connect(&args.remote).await?)),
        (None, Some(dir)) => Ok(Source::Local(blocking(|| open_local_as(dir, access))?)),
        (None, None) => {
            bail!(
                "say where the scans are: --coordinator URL, or --data-dir DIR to read one offline"
            )
        }
    }
}

/// Open a data directory offline with `access`.
fn open_local_as(dir: &Path, access: Access) -> anyhow::Result<Arc<Coordinator>> {
    if !dir.exists() {
        bail!("data directory {} does not exist", dir.display());
    }
    let store = match access {
        Access::Read => Store::open_reader(dir),
        Access::Write => Store::open(dir),
    };
    let store = store.with_context(|| {
        format!(
            "opening {} (if a coordinator runs on it, use --coordinator URL instead)",
            dir.display()
        )
    })?;
    Ok(Arc::new(Coordinator::open(
        store,
        CoordinatorConfig::default(),
    )?))
}

/// The command line's boundary to blocking work inside async code (a data
/// directory, files): the calling worker thread becomes a blocking one for
/// the call ([`tokio::task::block_in_place`]), so no other task waits
/// behind the disk. Borrowed work, unlike the service's `'static`
/// [`Coordinator::blocking`].
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
}

/// A clean stop: once the last handle on the store is gone, let sled do
/// what it would do on the next open ([`Store::settle`]), so that `status`,
/// `report` and the other readers leave the directory byte-identical.
/// Best effort: a handle still held past the lock wait leaves it to the
/// next open.
pub(crate) async fn settle(coordinator: Arc<Coordinator>, dir: &Path) {
    drop(coordinator);
    if let Err(e) = blocking(|| Store::settle(dir)) {
        tracing::debug!(error = %e, "the data directory was not settled");
    }
}
