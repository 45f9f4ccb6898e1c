//! `mxscope scan`: the embedded mode. A coordinator and a local worker in
//! one process, the worker calling the coordinator's worker service
//! directly (no connection); sled under `--data-dir`; a progress bar; the
//! headline summary at the end.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use mxscope_common::cli::args::{shutdown_on_signals, SlotArgs};
use mxscope_common::cli::config::OpsArgs;
use mxscope_common::process::runtime::OwnRuntime;
use mxscope_common::wire::proto::worker_service_server::WorkerService;
use mxscope_coordinator::grpc::server::expire_leases;
use mxscope_coordinator::grpc::worker::WorkerApi;
use mxscope_coordinator::model::ScanState;
use mxscope_coordinator::readiness::Readiness;
use mxscope_coordinator::service::{Coordinator, CoordinatorConfig, ScanRequest};
use mxscope_coordinator::store::Store;
use mxscope_worker::fleet::{self, FleetConfig, LocalService};
use tokio_util::sync::CancellationToken;

use super::blocking;
use super::list::ListReader;
use super::options;
use super::progress::ScanProgress;
use super::submit::list_name;
use crate::{ScanMetaArgs, ScanOptionArgs};

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Domain list (one per line, `#` comments), or `-` for standard input.
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    list: Option<PathBuf>,
    /// Finish an interrupted scan of `--data-dir` (Ctrl-C, a kill, a
    /// reboot) instead of starting one: SCAN, or the one scan still
    /// running there. It runs with the options and the vantage it was
    /// started with (the probe flags given now are not used); what was
    /// acknowledged is kept and nothing is done twice.
    #[arg(long, value_name = "SCAN", num_args = 0..=1, default_missing_value = "")]
    resume: Option<String>,
    /// Where scans and results are kept.
    #[arg(long, default_value = "mxscope-data")]
    data_dir: PathBuf,
    /// Vantage label of this machine's network.
    #[arg(long, default_value = "local")]
    vantage: String,
    /// Source address of the probes (selects the network to measure from).
    #[arg(long, value_name = "SRC_ADDR")]
    bind: Option<IpAddr>,
    #[command(flatten)]
    slots: SlotArgs,
    #[command(flatten)]
    meta: ScanMetaArgs,
    #[command(flatten)]
    pub(crate) probe: ScanOptionArgs,
    /// Print the headline as JSON instead of the sentence.
    #[arg(long)]
    json: bool,
    /// How long the scan waits while --data-dir cannot be written (a full
    /// disk) before it stops, saying what is full and how to resume.
    #[arg(long, value_name = "DURATION", default_value = "2m",
          value_parser = mxscope_common::units::parse_duration)]
    full_disk_wait: Duration,
    #[command(flatten)]
    pub(crate) ops: OpsArgs,
}

/// The embedded coordinator's page cache: its store is written in list
/// order (each page by one batch, read again only by the headline at the
/// end), and the process holds the worker too. At 1M domains: the same
/// time as the serving coordinator's 256 MiB, 30 MiB less peak memory
/// (docs/benchmarks.md).
const STORE_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How often the scan's status is read (the progress, and its end: each
/// read after the end costs the report that much).
const STATUS_EVERY: Duration = Duration::from_millis(50);

/// Submit the list to the embedded coordinator: its scan id.
async fn submit(
    coordinator: &Arc<Coordinator>,
    args: &ScanArgs,
    list: &mut ListReader,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    let mut options = options(&args.probe)?;
    // Here the list is the coordinator's own: SIGHUP reloads it mid-scan.
    options.exclusions.clear();
    let name = args.meta.name.clone().unwrap_or_else(|| list_name(path));
    // Streamed: a chunk of the list in memory at a time. A failed read or
    // a refused line drops the submission, and its staged lines with it.
    let mut submission = coordinator.begin_submit(ScanRequest {
        name,
        labels: args.meta.labels(),
        vantages: vec![args.vantage.clone()],
        options,
        skip_invalid: args.meta.skip_invalid,
    })?;
    loop {
        let chunk = blocking(|| list.next_chunk())
            .with_context(|| format!("reading domain list {}", path.display()))?;
        if chunk.is_empty() {
            break;
        }
        submission
            .push(&chunk)
            .await
            .with_context(|| format!("in {}", path.display()))?;
    }
    let submitted = submission
        .finish()
        .await
        .with_context(|| format!("in {}", path.display()))?;
    for skipped in &submitted.skipped {
        eprintln!("skipped {skipped}");
    }
    let scan_id = submitted.scan_id.clone();
    eprintln!(
        "scan {scan_id}: {} domains ({} duplicates merged), data in {}",
        submitted.domains,
        submitted.duplicates,
        args.data_dir.display()
    );
    Ok(scan_id)
}

/// The scan `--resume` names (or the one still running), made ready to
/// go on: its leases, held by the process that was stopped, are taken
/// back. (scan id, its vantage).
async fn resumed(
    coordinator: &Arc<Coordinator>,
    args: &ScanArgs,
    wanted: &str,
) -> anyhow::Result<(String, String)> {
    let dir = args.data_dir.display();
    let scans = blocking(|| coordinator.list())?;
    let status = if wanted.is_empty() {
        let running: Vec<_> = scans
            .iter()
            .filter(|s| s.meta.state == ScanState::Running)
            .collect();
        match running.as_slice() {
            [one] => (*one).clone(),
            [] => bail!("no scan to resume in {dir}: every scan there has ended"),
            many => bail!(
                "several scans are running in {dir} ({}): say which, e.g. --resume {}",
                many.iter()
                    .map(|s| s.meta.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                many[0].meta.id
            ),
        }
    } else {
        blocking(|| coordinator.status(wanted))
            .with_context(|| format!("no scan {wanted} in {dir}"))?
    };
    let meta = &status.meta;
    let [vantage] = meta.vantages.as_slice() else {
        bail!(
            "scan {} runs from several vantages ({}): finish it with mxscope serve and one \
             mxscope-worker work per vantage",
            meta.id,
            meta.vantages.join(", ")
        );
    };
    if meta.state == ScanState::Running {
        let taken = coordinator.take_back_leases().await?;
        eprintln!(
            "scan {}: resuming ({} leases taken back), data in {dir}",
            meta.id, taken
        );
    } else {
        eprintln!("scan {} has already ended ({:?})", meta.id, meta.state);
    }
    Ok((meta.id.clone(), vantage.clone()))
}

pub(crate) async fn run(args: ScanArgs) -> anyhow::Result<()> {
    let mut list = match &args.list {
        Some(path) => Some((ListReader::open(path)?, path.clone())),
        None => None,
    };
    let readiness = Arc::new(Readiness::default());
    let _stop_ops =
        super::serve::start_ops(&args.ops, &readiness, mxscope_worker::metrics::register).await?;
    blocking(|| std::fs::create_dir_all(&args.data_dir))
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = blocking(|| Store::open_with_cache(&args.data_dir, STORE_CACHE_BYTES))
        .with_context(|| {
            format!(
                "opening data directory {} (is another mxscope using it?)",
                args.data_dir.display()
            )
        })?;
    let config = CoordinatorConfig {
        lease_ttl: Duration::from_secs(30),
        heartbeat_interval: Duration::from_secs(5),
        ..CoordinatorConfig::default()
    };
    let coordinator = Arc::new(blocking(|| Coordinator::open(store, config))?);
    if let Some(path) = args.probe.exclude.clone() {
        super::exclude::install(&coordinator, path)?;
    }
    readiness.opened(coordinator.clone());
    let (scan_id, vantage) = match (&mut list, &args.resume) {
        (Some((list, path)), _) => (
            submit(&coordinator, &args, list, path).await?,
            args.vantage.clone(),
        ),
        (None, resume) => {
            resumed(&coordinator, &args, resume.as_deref().unwrap_or_default()).await?
        }
    };

    let shutdown = CancellationToken::new();
    readiness.serving(true);
    // The coordinator gets a thread of its own: on the probes' runtime its
    // lease and report calls queued behind thousands of TLS sessions. The
    // worker calls its service there directly: the same requests and
    // replies as over gRPC, without a connection (loopback gRPC cost a
    // national scan about 5 % of its CPU: docs/benchmarks.md, `national`).
    let control = OwnRuntime::start("mxscope-coordinator", 1)
        .context("starting the coordinator's runtime")?;
    let expiry = control
        .handle()
        .spawn(expire_leases(coordinator.clone(), shutdown.clone()));
    let service: Arc<dyn WorkerService> = Arc::new(WorkerApi::new(coordinator.clone()));
    let mut fleet_config = FleetConfig::new(
        "in-process",
        format!("local-{}", std::process::id()),
        &vantage,
    );
    let local = LocalService::new(service, control.handle().clone());
    fleet_config.bind = args.bind;
    fleet_config.probe_concurrency = args.slots.sessions();
    fleet_config.dns_concurrency = args.slots.resolutions();
    // Leasing follows free slots; tasks are never the bound.
    fleet_config.capacity = args.slots.sessions() + args.slots.resolutions();
    let worker_shutdown = CancellationToken::new();
    let worker = tokio::spawn(fleet::run_in_process(
        fleet_config,
        local,
        worker_shutdown.clone(),
    ));

    let interrupt = CancellationToken::new();
    shutdown_on_signals(interrupt.clone()).context("installing the signal handlers")?;
    let bar = ScanProgress::new();
    let mut full: Option<String> = None;
    let interrupted = loop {
        // While the store fails it may be closed for a moment (reopened).
        match blocking(|| coordinator.status(&scan_id)) {
            Ok(status) => {
                bar.update(&status);
                if status.meta.state != ScanState::Running {
                    break false;
                }
            }
            Err(_) if coordinator.storage_problem().is_some() => {}
            Err(error) => return Err(error.into()),
        }
        if coordinator
            .storage_failing_for()
            .is_some_and(|d| d >= args.full_disk_wait)
        {
            full = coordinator.storage_problem();
            break true;
        }
        tokio::select! {
            _ = tokio::time::sleep(STATUS_EVERY) => {}
            () = interrupt.cancelled() => break true,
        }
    };
    bar.finish();
    worker_shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), expiry).await;
    drop(control);
    if let Some(problem) = full {
        drop((readiness, _stop_ops));
        drop(coordinator);
        bail!(
            "{problem}\nscan {scan_id} stopped after waiting {} s; acknowledged results are kept. \
             Free space on that filesystem, then finish it with: \
             mxscope scan --resume {scan_id} --data-dir {}",
            args.full_disk_wait.as_secs(),
            args.data_dir.display()
        );
    }
    if interrupted {
        drop((readiness, _stop_ops));
        super::settle(coordinator, &args.data_dir).await;
        bail!(
            "interrupted: scan {scan_id} stays in {dir} (acknowledged results are kept); \
             finish it with: mxscope scan --resume {scan_id} --data-dir {dir}",
            dir = args.data_dir.display()
        );
    }

    let headline = blocking(|| {
        // The worker is gone: what it freed goes back before the report reads.
        mxscope_common::process::allocator::return_freed_memory_from_now();
        coordinator.headline(&scan_id, &vantage)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&headline)?);
    } else {
        println!("{headline}.");
        println!(
            "Domains: {} with MX, {} implicit MX, {} null MX, {} DNS errors; \
             {} with every MX and {} with the primary MX supporting STARTTLS; \
             {} MX hosts whose addresses disagree.",
            headline.domains_with_mx,
            headline.domains_implicit_mx,
            headline.domains_null_mx,
            headline.domains_dns_error,
            headline.domains_all_mx_starttls,
            headline.domains_primary_mx_starttls,
            headline.mx_inconsistent
        );
        println!(
            "Records: mxscope export {scan_id} --data-dir {} --format jsonl|csv|findings \
             (or --format parquet --out DIR)",
            args.data_dir.display()
        );
    }
    drop((readiness, _stop_ops));
    super::settle(coordinator, &args.data_dir).await;
    Ok(())
}
