//! `mxscope`: run scans of mail transport security, alone or as a cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use mxscope_common::cli::{args as cli_args, config as cli_config};
use mxscope_common::options::defaults;
use mxscope_common::process::allocator;
use mxscope_common::process::telemetry::{self, LogFormat};

mod commands;

#[derive(Debug, Parser)]
#[command(
    name = "mxscope",
    version,
    about = "Measure how the mail exchangers of a list of domains protect mail in transit",
    long_about = "Measure how the mail exchangers (MX) of a list of domains protect mail in \
                  transit: STARTTLS support, TLS versions, keys and certificates, from one or \
                  several vantage points.\n\n\
                  `mxscope scan domains.txt` does everything in one process. For a cluster, run \
                  `mxscope serve` and workers (`mxscope-worker work`) on each vantage, then \
                  `mxscope submit`, `status`, `export` and `report`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan a domain list in this process (embedded coordinator and worker) and print the summary.
    #[command(
        after_help = "Example:\n  mxscope scan domains.txt --ehlo-name scanner.example.org\n\n\
        Results stay in --data-dir: `mxscope status --data-dir DIR` and \
        `mxscope export SCAN --data-dir DIR --format csv` read them afterwards."
    )]
    Scan(commands::scan::ScanArgs),
    /// Run the coordinator (gRPC) for workers and operators.
    Serve(commands::serve::ServeArgs),
    /// Submit a domain list as a new scan to a running coordinator.
    Submit(commands::submit::SubmitArgs),
    /// Show scans and their progress.
    Status(commands::status::StatusArgs),
    /// Export a scan's records as JSON Lines or CSV.
    Export(commands::export::ExportArgs),
    /// Cancel a running scan.
    Cancel(commands::status::CancelArgs),
    /// Report on a scan: the headline, distributions, the per-domain table.
    Report(commands::report::ReportArgs),
    /// Compare scans side by side (datasets, countries, dates).
    Compare(commands::report::CompareArgs),
    /// Compare the vantages of a scan: every target and domain (DNS) whose view differs.
    Vantages(commands::report::VantagesArgs),
    /// Print the shell completion script for mxscope (e.g. `mxscope completions bash >
    /// /etc/bash_completion.d/mxscope`).
    Completions {
        #[arg(value_enum)]
        shell: mxscope_common::cli::docs::Shell,
    },
    /// Write mxscope's man pages (mxscope.1, mxscope-scan.1, ...) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
}

impl Command {
    /// The commands that read a store (or a coordinator's answer) and
    /// free as fast as they allocate: they give memory back promptly.
    fn reads_a_store(&self) -> bool {
        matches!(
            self,
            Self::Status(_)
                | Self::Export(_)
                | Self::Report(_)
                | Self::Compare(_)
                | Self::Vantages(_)
        )
    }
}

/// How probes are made and how politely a scan runs (carried by the scan
/// to every worker).
#[derive(Debug, Clone, Args)]
pub(crate) struct ScanOptionArgs {
    #[command(flatten)]
    probe: cli_args::ProbeArgs,
    /// Never resolve or contact what FILE lists, one entry a line (`#` comments):
    /// networks (192.0.2.0/24, 2001:db8::/48) and addresses, domains (example.org
    /// or domain:example.org, with every name under it) and MX-name suffixes
    /// (mx:mail.example.net). Excluded targets are recorded `skipped` (`excluded`).
    #[arg(long, value_name = "FILE")]
    exclude: Option<PathBuf>,
    /// Sessions per target that answers 421/4xx (greeting, EHLO) or resets
    /// before the greeting; 1 = never retry. Other targets run meanwhile.
    #[arg(long, value_name = "N", default_value_t = defaults::RETRY_ATTEMPTS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(defaults::MAX_RETRY_ATTEMPTS)))]
    retry_attempts: u32,
    /// Wait before the first retry of such a target; it doubles for each further one.
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::RETRY_DELAY), value_parser = commands::parse_duration)]
    retry_delay: Duration,
    /// Least time between two sessions to one IP (retries, legacy-version,
    /// certificate-per-name and first-flight sessions included); 0s = none.
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::IP_GAP), value_parser = mxscope_common::units::parse_duration_or_zero)]
    ip_gap: Duration,
    /// Most sessions per second to one network (/24 IPv4, /48 IPv6), across all
    /// workers of a vantage; 0 = no limit.
    #[arg(long, value_name = "PER_SECOND", default_value = defaults::rate_text(defaults::NETWORK_RATE_MILLI), value_parser = commands::parse_rate)]
    network_rate: f64,
    /// Most sessions per second of a whole vantage, shared by its workers; 0 = no cap.
    #[arg(long, value_name = "PER_SECOND", default_value = defaults::rate_text(defaults::VANTAGE_RATE_MILLI), value_parser = commands::parse_rate)]
    vantage_rate: f64,
}

/// Name and labels of a scan.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScanMetaArgs {
    /// Name of the scan (default: the list's file name).
    #[arg(long)]
    name: Option<String>,
    /// Label as key=value (e.g. country=IT); may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = commands::parse_label)]
    labels: Vec<(String, String)>,
    /// Skip invalid lines of the list (and report them) instead of refusing it.
    #[arg(long)]
    skip_invalid: bool,
}

impl ScanMetaArgs {
    fn labels(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }
}

/// Where scans are: a running coordinator, or a data directory read offline.
#[derive(Debug, Clone, Args)]
pub(crate) struct SourceArgs {
    #[command(flatten)]
    remote: CoordinatorArgs,
    /// Read this data directory directly (no coordinator may be running on it).
    #[arg(long, value_name = "DIR", conflicts_with = cli_args::COORDINATOR)]
    data_dir: Option<PathBuf>,
}

/// `--coordinator URL` and the token and TLS files to reach it (shared with the worker).
pub(crate) use mxscope_common::cli::args::CoordinatorArgs;

/// Commands whose settings may come from `--config` and `MXSCOPE_*`.
const CONFIGURABLE: &[&str] = &["serve"];

/// mimalloc: at 1M domains glibc's malloc was a quarter of the
/// coordinator's CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    allocator::without_transparent_huge_pages();
    let cli = match cli_config::parse::<Cli>(CONFIGURABLE) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("mxscope: {error}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Command::Completions { shell } => {
            // A closed pipe (`| head`) ends it quietly.
            let _ = mxscope_common::cli::docs::print_completions(Cli::command(), *shell);
            return ExitCode::SUCCESS;
        }
        Command::Man { dir } => {
            return match mxscope_common::cli::docs::write_man_pages(Cli::command(), dir) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mxscope: writing man pages into {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    // The coordinator is a service: its life is worth logging.
    let (level, format) = match &cli.command {
        Command::Serve(args) => ("info", args.ops.log_format),
        Command::Scan(args) => ("warn", args.ops.log_format),
        _ => ("warn", LogFormat::Text),
    };
    telemetry::init(level, format);
    if cli.command.reads_a_store() {
        allocator::return_freed_memory_promptly();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mxscope: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Scan(args) => commands::scan::run(args).await,
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Submit(args) => commands::submit::run(args).await,
            Command::Status(args) => commands::status::run(args).await,
            Command::Export(args) => commands::export::run(args).await,
            Command::Cancel(args) => commands::status::cancel(args).await,
            Command::Report(args) => commands::report::run(args).await,
            Command::Compare(args) => commands::report::compare(args).await,
            Command::Vantages(args) => commands::report::vantages(args).await,
            Command::Completions { .. } | Command::Man { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mxscope: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--resolver IP` means port 53 here as on the worker (one parser).
    #[test]
    fn resolvers_parse_as_on_the_worker() {
        let cli =
            Cli::try_parse_from(["mxscope", "scan", "l.txt", "--resolver", "127.0.0.1"]).unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("not the scan command");
        };
        let options = commands::options(&args.probe).unwrap();
        assert_eq!(options.resolvers, ["127.0.0.1:53"]);
        assert_eq!(options.retry_attempts, defaults::RETRY_ATTEMPTS);
        assert_eq!(
            options.network_rate_milli,
            Some(defaults::NETWORK_RATE_MILLI)
        );
        assert_eq!(options.vantage_rate_milli, defaults::VANTAGE_RATE_MILLI);
    }

    /// One `--coordinator`: required where no data directory can stand in,
    /// exclusive with `--data-dir` where one can.
    #[test]
    fn coordinator_is_required_or_exclusive_with_data_dir() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.command);
        let submit = ["mxscope", "submit", "l.txt", "--vantage", "v"];
        assert!(parse(&submit).is_err(), "submit needs --coordinator");
        let submit = [&submit[..], &["--coordinator", "http://c"]].concat();
        assert!(matches!(parse(&submit), Ok(Command::Submit(_))));
        for command in ["status", "export", "report", "cancel", "vantages"] {
            let with_scan = |extra: &[&'static str]| {
                let mut args = vec!["mxscope", command];
                if command != "status" {
                    args.push("scan-1");
                }
                args.extend_from_slice(extra);
                args
            };
            assert!(
                parse(&with_scan(&["--coordinator", "http://c"])).is_ok(),
                "{command}"
            );
            assert!(parse(&with_scan(&["--data-dir", "d"])).is_ok(), "{command}");
            assert!(
                parse(&with_scan(&[
                    "--coordinator",
                    "http://c",
                    "--data-dir",
                    "d"
                ]))
                .is_err(),
                "{command}: --coordinator and --data-dir exclude each other"
            );
        }
    }
}
