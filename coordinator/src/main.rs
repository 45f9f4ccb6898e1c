//! `mxscope`: run scans of mail transport security, alone or as a cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mxscope_common::cli_config;
use mxscope_common::telemetry::{self, LogFormat};

mod cli;

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
    Scan(cli::scan::ScanArgs),
    /// Run the coordinator (gRPC) for workers and operators.
    Serve(cli::serve::ServeArgs),
    /// Submit a domain list as a new scan to a running coordinator.
    Submit(cli::submit::SubmitArgs),
    /// Show scans and their progress.
    Status(cli::status::StatusArgs),
    /// Export a scan's records as JSON Lines or CSV.
    Export(cli::export::ExportArgs),
    /// Cancel a running scan.
    Cancel(cli::status::CancelArgs),
    /// Report on a scan: the headline, distributions, the per-domain table.
    Report(cli::report::ReportArgs),
    /// Compare scans side by side (datasets, countries, dates).
    Compare(cli::report::CompareArgs),
    /// Compare the vantages of a scan: every target and domain (DNS) whose view differs.
    Vantages(cli::report::VantagesArgs),
}

/// How probes are made (carried by the scan to every worker).
#[derive(Debug, Clone, Args)]
pub(crate) struct ProbeArgs {
    /// Name sent in EHLO: identify your scanner with a name that leads to a contact.
    #[arg(long, value_name = "NAME", default_value_t = mxscope_worker::config::default_ehlo_name())]
    ehlo_name: mxscope_common::EhloName,
    /// SMTP port to connect to.
    #[arg(long, default_value_t = 25)]
    port: u16,
    /// Also test SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 support (one extra session each).
    #[arg(long)]
    legacy: bool,
    /// DNS server for the workers (IP:PORT); may be repeated. Default: each worker's system configuration.
    #[arg(long = "resolver", value_name = "IP:PORT")]
    resolvers: Vec<std::net::SocketAddr>,
    /// Verify certificates against this PEM bundle instead of Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Also probe loopback, private and other non-public addresses (labs).
    #[arg(long)]
    allow_private: bool,
    /// Also check DNSSEC, DANE, reverse DNS, MTA-STS and TLS-RPT (through the
    /// same resolvers).
    #[arg(long)]
    security: bool,
    /// DNSSEC trust anchor: a file of DNSKEY records in zone-file format.
    /// Default: the IANA root.
    #[arg(long, value_name = "FILE", requires = "security")]
    trust_anchor: Option<PathBuf>,
    /// Connect timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = cli::parse_duration)]
    timeout_connect: Duration,
    /// Wait for the greeting.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = cli::parse_duration)]
    timeout_greeting: Duration,
    /// Wait for each command's reply.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = cli::parse_duration)]
    timeout_command: Duration,
    /// TLS handshake timeout.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = cli::parse_duration)]
    timeout_handshake: Duration,
    /// Absolute limit on one SMTP session.
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = cli::parse_duration)]
    timeout_session: Duration,
    /// Never resolve or contact what FILE lists, one entry a line (`#` comments):
    /// networks (192.0.2.0/24, 2001:db8::/48) and addresses, domains (example.org
    /// or domain:example.org, with every name under it) and MX-name suffixes
    /// (mx:mail.example.net). Excluded targets are recorded `skipped` (`excluded`).
    #[arg(long, value_name = "FILE")]
    exclude: Option<PathBuf>,
    /// Sessions per target that answers 421/4xx (greeting, EHLO) or resets
    /// before the greeting; 1 = never retry. Other targets run meanwhile.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    retry_attempts: u32,
    /// Wait before the first retry of such a target; it doubles for each further one.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = cli::parse_duration)]
    retry_delay: Duration,
    /// Least time between two sessions to one IP (retries included); 0s = none.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = cli::parse_duration)]
    ip_gap: Duration,
    /// Most sessions per second to one network (/24 IPv4, /48 IPv6), across all
    /// workers of a vantage; 0 = no limit.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 10.0, value_parser = cli::parse_rate)]
    network_rate: f64,
    /// Most sessions per second of a whole vantage, shared by its workers; 0 = no cap.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 100.0, value_parser = cli::parse_rate)]
    vantage_rate: f64,
}

/// Name and labels of a scan.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScanMetaArgs {
    /// Name of the scan (default: the list's file name).
    #[arg(long)]
    name: Option<String>,
    /// Label as key=value (e.g. country=IT); may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = cli::parse_label)]
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
    /// URL of a running coordinator (http:// or https://).
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    coordinator: Option<String>,
    /// Read this data directory directly (no coordinator may be running on it).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Credentials and TLS files for talking to a coordinator.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// File holding the admin token (or set MXSCOPE_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Trust this PEM bundle for an https:// coordinator instead of Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    coordinator_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a coordinator that requires mutual TLS.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

/// Commands whose settings may come from `--config` and `MXSCOPE_*`.
const CONFIGURABLE: &[&str] = &["serve"];

fn main() -> ExitCode {
    let cli = match cli_config::parse::<Cli>(CONFIGURABLE) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("mxscope: {error}");
            return ExitCode::from(2);
        }
    };
    // The coordinator is a service: its life is worth logging.
    let (level, format) = match &cli.command {
        Command::Serve(args) => ("info", args.ops.log_format),
        Command::Scan(args) => ("warn", args.ops.log_format),
        _ => ("warn", LogFormat::Text),
    };
    telemetry::init(level, format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mxscope: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Scan(args) => cli::scan::run(args).await,
            Command::Serve(args) => cli::serve::run(args).await,
            Command::Submit(args) => cli::submit::run(args).await,
            Command::Status(args) => cli::status::run(args).await,
            Command::Export(args) => cli::export::run(args).await,
            Command::Cancel(args) => cli::status::cancel(args).await,
            Command::Report(args) => cli::report::run(args).await,
            Command::Compare(args) => cli::report::compare(args).await,
            Command::Vantages(args) => cli::report::vantages(args).await,
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
