//! `mxscope serve`: the coordinator for workers and operators.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use mxscope_common::cli::args::shutdown_on_signals;
use mxscope_common::cli::config::{ConfigArg, OpsArgs};
use mxscope_common::process::ops::Ops;
use mxscope_coordinator::grpc::auth::Tokens;
use mxscope_coordinator::grpc::limits::ServerLimits;
use mxscope_coordinator::grpc::server::{serve, TlsFiles};
use mxscope_coordinator::metrics;
use mxscope_coordinator::readiness::Readiness;
use mxscope_coordinator::service::{Coordinator, CoordinatorConfig};
use mxscope_coordinator::store::Store;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

use super::{blocking, parse_duration, read_pem, read_secret};

#[derive(Debug, Args)]
#[command(
    after_help = "Secrets never go on the command line: tokens come from files \
    (--admin-token-file, --worker-token-file) or the environment \
    (MXSCOPE_ADMIN_TOKEN, MXSCOPE_WORKER_TOKEN).\n\n\
    Every option can also be set in a TOML file given with --config (key: the \
    long option without `--`, e.g. data-dir = \"/var/lib/mxscope\") or in an \
    MXSCOPE_* variable (MXSCOPE_DATA_DIR); flags beat variables, variables beat \
    the file. deploy/mxscope.toml is a commented example.\n\n\
    With --metrics-listen: GET /metrics (Prometheus), /healthz (alive) and \
    /readyz (200 once the store is open and gRPC accepts work, 503 before and \
    while shutting down). The gRPC port also serves grpc.health.v1.\n\n\
    Example:\n  mxscope serve --listen 0.0.0.0:7443 --data-dir /var/lib/mxscope \\\n    \
    --tls-cert server.pem --tls-key server.key \\\n    \
    --admin-token-file admin.token --worker-token-file worker.token"
)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// Where scans, tasks and results are kept (sled).
    #[arg(long, default_value = "mxscope-data")]
    data_dir: PathBuf,
    /// Server certificate chain (PEM); with --tls-key enables TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// File with the admin token (may submit and cancel); or MXSCOPE_ADMIN_TOKEN.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// File with the worker token (may only lease and report); or MXSCOPE_WORKER_TOKEN.
    #[arg(long, value_name = "FILE")]
    worker_token_file: Option<PathBuf>,
    /// Exclusion list for every scan (format: `mxscope scan --help`); SIGHUP
    /// reloads it, and what is planned or leased from then on follows it.
    #[arg(long, value_name = "FILE")]
    exclude: Option<PathBuf>,
    /// Targets per probe task (one task is leased to one worker; a network's
    /// targets are leased to one worker at a time).
    #[arg(long, value_name = "N", default_value_t = 32,
        value_parser = clap::value_parser!(u16).range(1..=1024))]
    probe_batch: u16,
    /// A lease not heartbeated for this long goes back to the queue.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    lease_ttl: Duration,
    /// If the data directory is locked (another coordinator still has it),
    /// retry for this long before giving up (default: give up at once);
    /// /readyz says 503 meanwhile.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait_for_store: Option<Duration>,
    /// While the data directory cannot be written (a full disk) the
    /// coordinator leases no new work; after this long it exits non-zero,
    /// saying why, so that its supervisor (systemd's Restart=on-failure,
    /// Compose's restart policy) starts it again on the directory, which
    /// resumes every scan exactly.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    full_disk_wait: Duration,
    /// gRPC connections held at once (workers, operators, and anyone else
    /// who connects); the next ones are closed at once until some end. A
    /// connection that sends nothing for 10 s is closed. Part of the memory
    /// budget (docs/guide.md, "Memory budget").
    #[arg(long, value_name = "N", default_value_t = ServerLimits::default().max_connections as u32,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// MiB of request messages received at once, all connections together
    /// (a worker's result batch is at most 2 MiB); a call that finds them
    /// spent is refused with RESOURCE_EXHAUSTED and retried by its worker.
    #[arg(long, value_name = "MIB", default_value_t = (ServerLimits::default().request_memory >> 20) as u32,
        value_parser = clap::value_parser!(u32).range(32..=65_536))]
    request_memory_mib: u32,
    #[command(flatten)]
    pub(crate) ops: OpsArgs,
    #[command(flatten)]
    config: ConfigArg,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let Some(admin) = read_secret(args.admin_token_file.as_deref(), "MXSCOPE_ADMIN_TOKEN")? else {
        bail!("an admin token is required: --admin-token-file FILE or MXSCOPE_ADMIN_TOKEN");
    };
    let worker = read_secret(args.worker_token_file.as_deref(), "MXSCOPE_WORKER_TOKEN")?;
    let tokens = Tokens::new(vec![admin], worker.into_iter().collect());
    let tls = match (
        read_pem(args.tls_cert.as_ref())?,
        read_pem(args.tls_key.as_ref())?,
    ) {
        (Some(cert_pem), Some(key_pem)) => Some(TlsFiles {
            cert_pem,
            key_pem,
            client_ca_pem: read_pem(args.client_ca.as_ref())?,
        }),
        _ => None,
    };
    let shutdown = CancellationToken::new();
    shutdown_on_signals(shutdown.clone()).context("installing the signal handlers")?;
    let readiness = Arc::new(Readiness::default());
    let _stop_ops = start_ops(&args.ops, &readiness, |_| {}).await?;
    blocking(|| std::fs::create_dir_all(&args.data_dir))
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let Some(store) = open_store(
        &args.data_dir,
        args.wait_for_store.unwrap_or_default(),
        &shutdown,
    )
    .await?
    else {
        return Ok(());
    };
    let config = CoordinatorConfig {
        lease_ttl: args.lease_ttl,
        heartbeat_interval: (args.lease_ttl / 4).max(Duration::from_millis(200)),
        probe_batch: usize::from(args.probe_batch),
        ..CoordinatorConfig::default()
    };
    let coordinator = Arc::new(blocking(|| Coordinator::open(store, config))?);
    if let Some(path) = args.exclude.clone() {
        super::exclude::install(&coordinator, path)?;
    }
    readiness.opened(coordinator.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "mxscope coordinator listening on {scheme}://{}",
        listener.local_addr()?
    );
    readiness.serving(true);
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        readiness.serving(false);
    });
    // A full disk: stop once it has lasted --full-disk-wait.
    let full = Arc::new(std::sync::Mutex::new(None::<String>));
    let watcher = {
        let (coordinator, shutdown, full) = (coordinator.clone(), shutdown.clone(), full.clone());
        let wait = args.full_disk_wait;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if coordinator.storage_failing_for().is_some_and(|d| d >= wait) {
                    *full.lock().unwrap_or_else(|e| e.into_inner()) = coordinator.storage_problem();
                    shutdown.cancel();
                    return;
                }
            }
        })
    };
    let limits = ServerLimits {
        max_connections: args.max_connections as usize,
        request_memory: (args.request_memory_mib as usize) << 20,
        ..ServerLimits::default()
    };
    // Every connection is a descriptor (the store and the rest keep 256 more).
    let files = mxscope_worker::limits::ensure_open_files(limits.max_connections);
    if let Some(files) = files.filter(|f| f.limited(limits.max_connections)) {
        warn!(
            "the open-file limit ({}) holds {} of --max-connections {}: raise it \
             (LimitNOFILE= in the systemd unit, ulimit -n) or lower --max-connections",
            files.soft, files.reachable, limits.max_connections
        );
    }
    serve(
        coordinator.clone(),
        listener,
        tls,
        tokens,
        &limits,
        shutdown,
    )
    .await?;
    watcher.abort();
    drop(_stop_ops);
    let full = full.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(problem) = full {
        anyhow::bail!(
            "{problem}\nstopping after {} s so that the coordinator is started again on {} \
             once it can write (every scan resumes from what was acknowledged)",
            args.full_disk_wait.as_secs(),
            args.data_dir.display()
        );
    }
    super::settle(coordinator, &args.data_dir).await;
    Ok(())
}

/// With `--metrics-listen`, serve the coordinator's metrics and readiness
/// (and whatever `more` registers) until the guard drops.
pub(crate) async fn start_ops(
    args: &OpsArgs,
    readiness: &Arc<Readiness>,
    more: impl FnOnce(&mut Ops),
) -> anyhow::Result<DropGuard> {
    let stop = CancellationToken::new();
    if let Some(addr) = args.metrics_listen {
        let mut ops = Ops::new();
        metrics::register(&mut ops);
        mxscope_coordinator::readiness::watch(&mut ops, readiness.clone());
        more(&mut ops);
        mxscope_common::process::ops::start(ops, addr, &stop)
            .await
            .with_context(|| format!("--metrics-listen {addr}"))?;
    }
    Ok(stop.drop_guard())
}

/// Open the store, retrying for `wait` while it fails (a predecessor still
/// holds the lock); `None` when a signal came first.
async fn open_store(
    dir: &std::path::Path,
    wait: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Store>> {
    let started = tokio::time::Instant::now();
    loop {
        match blocking(|| Store::open(dir)) {
            Ok(store) => return Ok(Some(store)),
            Err(error) if started.elapsed() < wait => {
                warn!(%error, dir = %dir.display(), "cannot open the store yet; retrying");
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("opening data directory {}", dir.display()))
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
