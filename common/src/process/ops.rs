//! The operations listener of the long-running commands (`--metrics-listen`):
//! `GET /metrics` (Prometheus), `/healthz` (the process is alive) and
//! `/readyz` (it can do its job), on a port of its own so that the gRPC
//! port never serves them.
//!
//! Metrics are `prometheus-client` families registered by each crate's
//! `metrics` module. A scraper that asks for OpenMetrics
//! (`Accept: application/openmetrics-text`, as Prometheus does) gets it as
//! encoded; everyone else (curl, `promtool check metrics`) gets the
//! Prometheus text format 0.0.4, converted by [`to_prometheus_text`].
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections, a header-read timeout
//! and a limit on each connection's life; requests carry no body we read.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Most connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;
/// A client must send its request head within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this.
const CONNECTION_LIFE: Duration = Duration::from_secs(60);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a process is not ready: a short reason for `/readyz` and the logs.
pub type NotReady = String;

type ReadyCheck = Box<dyn Fn() -> Result<(), NotReady> + Send + Sync>;
type Refresh = Box<dyn Fn() + Send + Sync>;

/// What the operations listener serves: a registry, the hooks that refresh
/// gauges computed at scrape time, and the readiness checks (all must pass).
pub struct Ops {
    registry: Registry,
    refresh: Vec<Refresh>,
    ready: Vec<ReadyCheck>,
    /// One scrape at a time: refresh and encode see one state.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("refresh_hooks", &self.refresh.len())
            .field("ready_checks", &self.ready.len())
            .finish()
    }
}

impl Default for Ops {
    fn default() -> Self {
        Self::new()
    }
}

impl Ops {
    /// An empty registry, ready until a check says otherwise.
    pub fn new() -> Self {
        Self {
            registry: Registry::default(),
            refresh: Vec::new(),
            ready: Vec::new(),
            scrape: Mutex::new(()),
        }
    }

    /// The registry the crates' `metrics::register` functions fill.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Run `hook` before every scrape (gauges read from live state).
    pub fn on_scrape(&mut self, hook: impl Fn() + Send + Sync + 'static) {
        self.refresh.push(Box::new(hook));
    }

    /// `/readyz` answers 200 only while every check passes.
    pub fn ready_when(&mut self, check: impl Fn() -> Result<(), NotReady> + Send + Sync + 'static) {
        self.ready.push(Box::new(check));
    }

    /// The readiness verdict: the first failing check's reason.
    pub fn readiness(&self) -> Result<(), NotReady> {
        self.ready.iter().try_for_each(|check| check())
    }

    /// The metrics as OpenMetrics text.
    pub fn encode(&self) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        for hook in &self.refresh {
            hook();
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            warn!(%error, "encoding metrics failed");
        }
        text
    }

    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            );
        }
        match request.uri().path() {
            "/metrics" => {
                let openmetrics = request
                    .headers()
                    .get(ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("application/openmetrics-text"));
                let text = self.encode();
                if openmetrics {
                    reply(StatusCode::OK, OPENMETRICS, text)
                } else {
                    reply(StatusCode::OK, PROMETHEUS_TEXT, to_prometheus_text(&text))
                }
            }
            "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
            "/readyz" => match self.readiness() {
                Ok(()) => reply(StatusCode::OK, "text/plain", "ready\n".into()),
                Err(reason) => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {reason}\n"),
                ),
            },
            _ => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: try /metrics, /healthz or /readyz\n".into(),
            ),
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Bind `addr` and serve `ops` there (in a task) until `stop` is cancelled;
/// the address bound (port 0 picks one) is logged and returned.
pub async fn start(
    ops: Ops,
    addr: std::net::SocketAddr,
    stop: &CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving /metrics, /healthz and /readyz");
    tokio::spawn(serve(Arc::new(ops), listener, stop.clone()));
    Ok(local)
}

/// Serve `ops` on `listener` until `shutdown` is cancelled.
pub async fn serve(ops: Arc<Ops>, listener: TcpListener, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                warn!(%error, "accepting a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!("too many metrics connections: closing one");
            continue;
        };
        let ops = ops.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let ops = ops.clone();
                async move {
                    // Scrape hooks and readiness checks may read a store or
                    // the disk: never on an async thread.
                    let response = tokio::task::spawn_blocking(move || ops.respond(&request))
                        .await
                        .unwrap_or_else(|_| {
                            reply(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "text/plain",
                                "scrape failed\n".into(),
                            )
                        });
                    Ok::<_, Infallible>(response)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = tokio::time::timeout(CONNECTION_LIFE, connection) => {}
            }
            drop(slot);
        });
    }
}

/// OpenMetrics text (as `prometheus-client` encodes it) to the Prometheus
/// text format 0.0.4: a counter family `x` has samples `x_total`, so its
/// `# HELP`/`# TYPE` lines are renamed to `x_total`; `# UNIT` and `# EOF`
/// are dropped. Every other line is kept as it is.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((help_name, text)) = help.take() {
                let help_name = if help_name == name.trim_end_matches("_total") {
                    name.as_str()
                } else {
                    help_name
                };
                out.push_str(&format!("# HELP {help_name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some((name, text)) = help.take() {
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::Histogram;

    #[test]
    fn counters_are_renamed_and_openmetrics_markers_dropped() {
        let mut ops = Ops::new();
        let counter = Counter::<u64>::default();
        counter.inc_by(3);
        ops.registry()
            .register("mxscope_things", "Things seen", counter);
        let histogram = Histogram::new([0.1, 1.0]);
        histogram.observe(0.5);
        ops.registry()
            .register("mxscope_wait_seconds", "Waits", histogram);
        let text = to_prometheus_text(&ops.encode());
        assert!(
            text.contains("# HELP mxscope_things_total Things seen.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE mxscope_things_total counter\n"),
            "{text}"
        );
        assert!(text.contains("mxscope_things_total 3\n"), "{text}");
        assert!(
            text.contains("# TYPE mxscope_wait_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("mxscope_wait_seconds_bucket{le=\"1.0\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn readiness_is_the_first_failing_check() {
        let mut ops = Ops::new();
        assert_eq!(ops.readiness(), Ok(()));
        ops.ready_when(|| Ok(()));
        ops.ready_when(|| Err("store not open".into()));
        ops.ready_when(|| Err("later".into()));
        assert_eq!(ops.readiness(), Err("store not open".into()));
    }
}
