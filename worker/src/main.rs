//! `mxscope-worker`: measure the mail exchangers of domains from this machine.

use std::io::{BufReader, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, CommandFactory, Parser, Subcommand};
use mxscope_common::cli::args::{
    self as cli_args, required, shutdown_on_signals, CoordinatorArgs, SlotArgs, COORDINATOR,
};
use mxscope_common::cli::config::{self as cli_config, ConfigArg, OpsArgs};
use mxscope_common::process::allocator;
use mxscope_common::process::ops::Ops;
use mxscope_common::process::telemetry::{self, LogFormat};
use mxscope_common::units::parse_duration;
use mxscope_common::{parse_domain_list, DomainName, DomainRecord};
use mxscope_worker::config::default_ehlo_name;
use mxscope_worker::dns::MxResolver;
use mxscope_worker::fleet::runner::{dns_config, prober_of};
use mxscope_worker::fleet::{self, FleetConfig};
use mxscope_worker::probe::Progress;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "mxscope-worker",
    version,
    about = "Measure how the mail exchangers of domains protect mail in transit",
    long_about = "Measure how the mail exchangers (MX) of domains protect mail in transit: \
                  resolve each domain's MX, open one SMTP session per MX address, try \
                  STARTTLS and record the TLS version, cipher, certificate chain and its \
                  verification. No mail is ever sent: the session ends with QUIT."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Probe the MX hosts of one or more domains and print one record per domain.
    #[command(after_help = "Examples:\n  \
        mxscope-worker probe example.org\n  \
        mxscope-worker probe --json --legacy -f domains.txt > records.jsonl\n  \
        mxscope-worker probe --json --security example.org\n  \
        cat domains.txt | mxscope-worker probe -\n\n\
        Exit status: 0 when every domain was measured (whatever the outcome), \
        2 for invalid input or options.")]
    Probe(ProbeCommandArgs),
    /// Join a coordinator's fleet: lease tasks of one vantage, probe, report results.
    #[command(
        long_about = "Join a coordinator's fleet as a worker of one vantage (a network to \
                      measure from): register, lease resolve and probe tasks, run them, and \
                      stream the records back in batches. The worker keeps nothing on disk; \
                      it reconnects with capped exponential backoff and resends every batch \
                      the coordinator has not acknowledged. SIGTERM or SIGINT stops leasing, \
                      lets running tasks finish within --shutdown-grace, releases the rest \
                      and flushes the results; a second signal exits at once.",
        after_help = "The bearer token is read from --token-file or the MXSCOPE_TOKEN \
        environment variable, never from the command line.\n\n\
        Examples:\n  \
        MXSCOPE_TOKEN=... mxscope-worker work --coordinator https://coord.example:7400 \\\n      \
        --vantage eu-west --coordinator-ca ca.pem --egress-check smtp.example.org:25\n  \
        mxscope-worker work --coordinator http://127.0.0.1:7400 --vantage lab \\\n      \
        --bind 127.0.2.1 --resolver 127.0.0.1:5353\n\n\
        Every option can also be set in a TOML file given with --config (key: the \
        long option without `--`, e.g. vantage = \"eu-1\") or in an MXSCOPE_* \
        variable (MXSCOPE_VANTAGE); flags beat variables, variables beat the file. \
        deploy/mxscope-worker.toml is a commented example.\n\n\
        With --metrics-listen: GET /metrics (Prometheus), /healthz (alive) and \
        /readyz (200 once registered with the coordinator and the egress check \
        passed or was not asked for; 503 before, and when it failed).\n\n\
        Log level: MXSCOPE_LOG (default info). Exit status: 0 after a clean shutdown, \
        2 for invalid options or when the coordinator refuses the worker."
    )]
    Work(WorkArgs),
    /// Print the shell completion script for mxscope-worker (bash, zsh, fish, ...).
    Completions {
        #[arg(value_enum)]
        shell: mxscope_common::cli::docs::Shell,
    },
    /// Write mxscope-worker's man pages into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
}

#[derive(Debug, Args)]
#[command(mut_arg(COORDINATOR, required))]
struct WorkArgs {
    #[command(flatten)]
    coordinator: CoordinatorArgs,
    /// The vantage label this worker measures from (e.g. eu-west, lab-a).
    #[arg(long, value_name = "LABEL")]
    vantage: String,
    /// This worker's id, unique in the fleet. Default: HOSTNAME-PID.
    #[arg(long, value_name = "ID")]
    worker_id: Option<String>,
    /// Most tasks held at once (default: --concurrency + --dns-concurrency).
    /// Work is leased by free slots: a task's slow target holds one slot, not
    /// the task's size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    capacity: Option<u16>,
    #[command(flatten)]
    slots: SlotArgs,
    /// Source address of probes and of the egress check (selects the vantage's network).
    #[arg(long, value_name = "SRC_ADDR")]
    bind: Option<IpAddr>,
    /// DNS server to use instead of the scans' (IP:PORT, or IP for port 53); may be repeated.
    #[arg(long = "resolver", value_name = "IP:PORT", value_parser = cli_args::parse_resolver)]
    resolvers: Vec<SocketAddr>,
    /// Check port-25 egress at start by connecting to HOST:PORT within 5 s; a worker
    /// without egress is given no probe tasks.
    #[arg(long, value_name = "HOST:PORT")]
    egress_check: Option<String>,
    /// After SIGTERM, how long running tasks may take before they are released.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Records per result batch.
    #[arg(long, value_name = "N", default_value_t = fleet::config::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u16).range(1..=10000))]
    batch_size: u16,
    #[command(flatten)]
    ops: OpsArgs,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(Debug, Args)]
struct ProbeCommandArgs {
    /// Domains to probe; `-` reads a list from standard input (one per line, `#` comments).
    domains: Vec<String>,
    /// Read domains from this file (one per line, `#` comments); may be repeated.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    probe: cli_args::ProbeArgs,
    /// Source address to connect from (selects the vantage's network).
    #[arg(long, value_name = "SRC_ADDR")]
    bind: Option<IpAddr>,
    /// Most DNS lookups and SMTP sessions at once (sessions to one IP are always sequential).
    #[arg(long, default_value_t = u16::try_from(cli_args::DEFAULT_CONCURRENCY).unwrap_or(64),
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    concurrency: u16,
    /// Print JSON Lines (one domain record per line, targets embedded).
    #[arg(long)]
    json: bool,
    /// Skip invalid lines in domain lists (and report them) instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
}

/// Commands whose settings may come from `--config` and `MXSCOPE_*`.
const CONFIGURABLE: &[&str] = &["work"];

/// mimalloc, as the coordinator's (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    allocator::without_transparent_huge_pages();
    let cli = match cli_config::parse::<Cli>(CONFIGURABLE) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("mxscope-worker: {error}");
            return ExitCode::from(2);
        }
    };
    // A fleet worker is a service: its task progress is worth logging.
    let (default_level, format) = match &cli.command {
        Command::Work(args) => ("info", args.ops.log_format),
        _ => ("warn", LogFormat::Text),
    };
    telemetry::init(default_level, format);
    let result = match cli.command {
        Command::Probe(args) => probe(args),
        Command::Work(args) => work(args),
        Command::Completions { shell } => {
            // A closed pipe (`| head`) ends it quietly.
            let _ = mxscope_common::cli::docs::print_completions(Cli::command(), shell);
            Ok(())
        }
        Command::Man { dir } => mxscope_common::cli::docs::write_man_pages(Cli::command(), &dir)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("writing man pages into {}: {e}", dir.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mxscope-worker: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Gather the domains from arguments, files and stdin; all-or-nothing unless `skip_invalid`.
fn read_domains(args: &ProbeCommandArgs) -> anyhow::Result<Vec<DomainName>> {
    let mut domains = Vec::new();
    let mut lists = Vec::new();
    for (index, arg) in args.domains.iter().enumerate() {
        if arg == "-" {
            let stdin = std::io::stdin().lock();
            lists.push((
                "standard input".to_string(),
                parse_domain_list(stdin, args.skip_invalid),
            ));
        } else {
            match DomainName::parse(arg) {
                Ok(name) => domains.push(name),
                Err(reason) if args.skip_invalid => {
                    eprintln!("skipped argument {}: {arg:?}: {reason}", index + 1)
                }
                Err(reason) => bail!("argument {:?}: {reason}", arg),
            }
        }
    }
    for path in &args.files {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening domain list {}", path.display()))?;
        lists.push((
            path.display().to_string(),
            parse_domain_list(BufReader::new(file), args.skip_invalid),
        ));
    }
    for (source, list) in lists {
        let list = list.with_context(|| format!("in {source}"))?;
        for invalid in &list.invalid {
            eprintln!("skipped {source} {invalid}");
        }
        domains.extend(list.domains);
    }
    let mut seen = std::collections::HashSet::new();
    domains.retain(|d| seen.insert(d.as_str().to_string()));
    if domains.is_empty() {
        bail!("no domains given: pass domains as arguments, -f FILE, or - for standard input");
    }
    Ok(domains)
}

fn probe(args: ProbeCommandArgs) -> anyhow::Result<()> {
    let domains = read_domains(&args)?;
    // The flags make a scan's options, and the prober is built from them
    // as the fleet builds a leased scan's: one builder, one set of defaults.
    let options = args.probe.scan_options()?;
    let dns = dns_config(&options, &[])?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let records = runtime.block_on(async {
        let resolver = MxResolver::new(&dns)?;
        let prober = prober_of(&options, args.bind, &[])?;
        let show_progress = std::io::stderr().is_terminal();
        let records = prober
            .probe_domains(&resolver, &domains, usize::from(args.concurrency), |p| {
                if show_progress {
                    let (what, done, total) = match p {
                        Progress::Resolved { done, total } => ("resolved", done, total),
                        Progress::Probed { done, total } => ("probed", done, total),
                    };
                    eprint!("\r{what} {done}/{total}   ");
                }
            })
            .await;
        if show_progress {
            eprint!("\r\x1b[K");
        }
        anyhow::Ok(records)
    })?;
    print_records(&records, args.json)
}

fn work(args: WorkArgs) -> anyhow::Result<()> {
    let token = args.coordinator.connect.token()?;
    let tls = args.coordinator.connect.tls()?;
    let worker_id = args
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", default_ehlo_name(), std::process::id()));
    let mut config = FleetConfig::new(args.coordinator.url()?, worker_id, args.vantage);
    config.token = token;
    config.coordinator_ca_pem = tls.ca_pem;
    config.client_identity = tls.identity;
    config.capacity = args.capacity.map_or(
        args.slots.sessions() + args.slots.resolutions(),
        usize::from,
    );
    config.probe_concurrency = args.slots.sessions();
    config.dns_concurrency = args.slots.resolutions();
    config.bind = args.bind;
    config.resolvers_override = args.resolvers;
    config.egress_check = args.egress_check;
    config.shutdown_grace = args.shutdown_grace;
    config.batch_size = usize::from(args.batch_size);

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        shutdown_on_signals(shutdown.clone()).context("installing the signal handlers")?;
        let ops_stop = CancellationToken::new();
        if let Some(addr) = args.ops.metrics_listen {
            let mut ops = Ops::new();
            mxscope_worker::metrics::register(&mut ops);
            mxscope_common::process::ops::start(ops, addr, &ops_stop)
                .await
                .with_context(|| format!("--metrics-listen {addr}"))?;
        }
        let _stop_ops = ops_stop.drop_guard();
        fleet::run(config, shutdown).await?;
        anyhow::Ok(())
    })
}

fn print_records(records: &[DomainRecord], json: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for record in records {
        if json {
            serde_json::to_writer(&mut out, record)?;
            writeln!(out)?;
        } else {
            mxscope_worker::summary::write_domain(&mut out, record)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use mxscope_common::cli::args::{parse_resolver, read_secret};

    use super::*;

    #[test]
    fn resolvers() {
        assert_eq!(
            parse_resolver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(parse_resolver("::1"), Ok("[::1]:53".parse().unwrap()));
        assert!(parse_resolver("dns.example").is_err());
    }

    #[test]
    fn work_options() {
        let cli = Cli::try_parse_from([
            "mxscope-worker",
            "work",
            "--coordinator",
            "http://127.0.0.1:7400",
            "--vantage",
            "lab",
            "--resolver",
            "127.0.0.1:5353",
            "--shutdown-grace",
            "5s",
        ])
        .unwrap();
        let Command::Work(args) = cli.command else {
            panic!("not the work command");
        };
        assert_eq!(args.capacity, None);
        assert_eq!(args.coordinator.url().ok(), Some("http://127.0.0.1:7400"));
        assert!(
            Cli::try_parse_from(["mxscope-worker", "work", "--vantage", "lab"]).is_err(),
            "work needs --coordinator"
        );
        assert_eq!(args.shutdown_grace, Duration::from_secs(5));
        assert_eq!(args.resolvers, ["127.0.0.1:5353".parse().unwrap()]);
        // A client certificate needs its key.
        assert!(Cli::try_parse_from([
            "mxscope-worker",
            "work",
            "--coordinator",
            "http://x",
            "--vantage",
            "v",
            "--client-cert",
            "c.pem",
        ])
        .is_err());
    }

    #[test]
    fn token_from_file() {
        let path = std::env::temp_dir().join(format!("mxscope-token-{}", std::process::id()));
        std::fs::write(&path, "  s3cret\n").unwrap();
        let read_token = |path| read_secret(Some(path), "MXSCOPE_TOKEN");
        assert_eq!(read_token(&path).unwrap().as_deref(), Some("s3cret"));
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token(&path).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(read_token(&path).is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
