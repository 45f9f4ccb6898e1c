//! `mxscope serve`: the coordinator for workers and operators.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use mxscope_coordinator::grpc::auth::Tokens;
use mxscope_coordinator::grpc::server::{serve, TlsFiles};
use mxscope_coordinator::service::{Coordinator, CoordinatorConfig};
use mxscope_coordinator::store::Store;
use tokio_util::sync::CancellationToken;

use super::{parse_duration, read_pem, read_secret};

#[derive(Debug, Args)]
#[command(
    after_help = "Secrets never go on the command line: tokens come from files \
    (--admin-token-file, --worker-token-file) or the environment \
    (MXSCOPE_ADMIN_TOKEN, MXSCOPE_WORKER_TOKEN).\n\n\
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
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = Store::open(&args.data_dir)
        .with_context(|| format!("opening data directory {}", args.data_dir.display()))?;
    let config = CoordinatorConfig {
        lease_ttl: args.lease_ttl,
        heartbeat_interval: (args.lease_ttl / 4).max(Duration::from_millis(200)),
        probe_batch: usize::from(args.probe_batch),
        ..CoordinatorConfig::default()
    };
    let coordinator = Arc::new(Coordinator::open(store, config)?);
    if let Some(path) = args.exclude.clone() {
        super::exclude::install(&coordinator, path)?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "mxscope coordinator listening on {scheme}://{}",
        listener.local_addr()?
    );
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    serve(coordinator, listener, tls, tokens, shutdown).await?;
    Ok(())
}

/// SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
