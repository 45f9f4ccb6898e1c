//! `mxscope submit`: a domain list becomes a scan on a running coordinator.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::{connect, options, read_lines};
use mxscope_common::cli_args::{required, COORDINATOR};

use crate::{CoordinatorArgs, ScanMetaArgs, ScanOptionArgs};

#[derive(Debug, Args)]
#[command(
    mut_arg(COORDINATOR, required),
    after_help = "Example:\n  mxscope submit it-domains.txt --name it-2026-11 --label country=IT \\\n    \
    --vantage eu-1 --vantage us-1 --coordinator https://coord:7443 --token-file admin.token\n\n\
    An invalid line refuses the whole list, naming the line (unless --skip-invalid)."
)]
pub(crate) struct SubmitArgs {
    /// Domain list (one per line, `#` comments), or `-` for standard input.
    list: PathBuf,
    /// Vantage label the scan must be measured from; may be repeated.
    #[arg(long = "vantage", value_name = "LABEL", required = true)]
    vantages: Vec<String>,
    #[command(flatten)]
    meta: ScanMetaArgs,
    #[command(flatten)]
    probe: ScanOptionArgs,
    #[command(flatten)]
    coordinator: CoordinatorArgs,
}

pub(crate) async fn run(args: SubmitArgs) -> anyhow::Result<()> {
    let lines = read_lines(&args.list)?;
    if lines.is_empty() {
        bail!("{} is empty", args.list.display());
    }
    let mut client = connect(&args.coordinator).await?;
    let name = args
        .meta
        .name
        .clone()
        .unwrap_or_else(|| list_name(&args.list));
    let submitted = client
        .submit(
            name,
            args.meta.labels(),
            args.vantages.clone(),
            &options(&args.probe)?,
            args.meta.skip_invalid,
            lines,
        )
        .await
        .with_context(|| format!("submitting {}", args.list.display()))?;
    for skipped in &submitted.skipped {
        eprintln!("skipped {skipped}");
    }
    println!(
        "scan {} submitted: {} domains ({} duplicates merged, {} invalid lines skipped)",
        submitted.scan_id,
        submitted.domains,
        submitted.duplicates,
        submitted.skipped.len()
    );
    Ok(())
}

/// A scan name from a list's path.
pub(crate) fn list_name(path: &std::path::Path) -> String {
    if path == std::path::Path::new("-") {
        return "stdin".into();
    }
    path.file_stem()
        .map_or_else(|| "scan".into(), |s| s.to_string_lossy().into_owned())
}
