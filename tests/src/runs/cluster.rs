//! Real `mxscope serve` and `mxscope-worker work` processes for end-to-end
//! tests of the distributed mode. Binaries come from the target folder
//! (`cargo build --workspace --bins` makes them).

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mxscope_coordinator::grpc::client::AdminClient;

use crate::process::Daemon;

/// Admin token of test coordinators.
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
/// Worker token of test coordinators.
pub const WORKER_TOKEN: &str = "worker-token-for-tests";

/// A binary of this workspace, next to the test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // Test binaries live in `target/<profile>/deps`, other binaries one up.
    let mut dir = exe.parent().expect("binary folder");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target profile folder");
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

/// A fresh folder for one test under the lab folder.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = crate::lab::dir().join("cluster").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a test folder");
    dir
}

/// A coordinator process (`mxscope serve`) on a loopback port.
#[derive(Debug)]
pub struct CoordinatorProcess {
    daemon: Daemon,
    pub url: String,
    pub data_dir: PathBuf,
}

impl CoordinatorProcess {
    /// Start on `data_dir` with a short lease TTL, wait for its address.
    pub fn start(data_dir: &Path, lease_ttl: &str) -> anyhow::Result<Self> {
        Self::start_on(data_dir, lease_ttl, "127.0.0.1:0")
    }

    /// Start listening on `listen` (e.g. the port of a killed predecessor).
    pub fn start_on(data_dir: &Path, lease_ttl: &str, listen: &str) -> anyhow::Result<Self> {
        Self::start_with(data_dir, lease_ttl, listen, &[])
    }

    /// Start with extra `mxscope serve` arguments (e.g. TLS files).
    pub fn start_with(
        data_dir: &Path,
        lease_ttl: &str,
        listen: &str,
        extra: &[std::ffi::OsString],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin("mxscope"));
        cmd.args(["serve", "--listen", listen, "--lease-ttl", lease_ttl])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .env("MXSCOPE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("MXSCOPE_WORKER_TOKEN", WORKER_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data_dir.with_extension("coordinator.log"))
                    .context("coordinator log")?,
            ));
        let mut daemon = Daemon::spawn("mxscope serve", cmd)?;
        let stdout = daemon.take_stdout().context("coordinator stdout")?;
        // The first line names the address; read it on a thread, bounded in time.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .context("the coordinator printed no address within 20 s")?;
        if let Some(status) = daemon.exited() {
            bail!("the coordinator exited: {status}");
        }
        let Some(url) = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http"))
        else {
            bail!("unexpected first line from the coordinator: {line:?}");
        };
        Ok(Self {
            url: url.to_string(),
            daemon,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// SIGKILL: the coordinator crashes.
    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// `mxscope submit LIST --vantage V` to this coordinator with the admin
    /// token; add arguments and run it.
    pub fn submit_command(&self, list: &Path) -> Command {
        let mut cmd = Command::new(bin("mxscope"));
        cmd.args(["submit", "--vantage", "V", "--coordinator", &self.url])
            .arg(list)
            .env("MXSCOPE_TOKEN", ADMIN_TOKEN);
        cmd
    }

    /// An admin client of this coordinator.
    pub async fn admin(&self) -> AdminClient {
        AdminClient::connect(&self.url, Some(ADMIN_TOKEN), None)
            .await
            .expect("admin connection")
    }
}

/// A worker process (`mxscope-worker work`) for one vantage.
#[derive(Debug)]
pub struct WorkerProcess {
    daemon: Daemon,
}

impl WorkerProcess {
    /// Start a worker of `vantage` probing from `bind`.
    pub fn start(
        url: &str,
        vantage: &str,
        bind: IpAddr,
        id: &str,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_with(url, vantage, bind, id, log_dir, &[])
    }

    /// Start with extra `mxscope-worker work` arguments.
    pub fn start_with(
        url: &str,
        vantage: &str,
        bind: IpAddr,
        id: &str,
        log_dir: &Path,
        extra: &[std::ffi::OsString],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin("mxscope-worker"));
        cmd.args([
            "work",
            "--coordinator",
            url,
            "--vantage",
            vantage,
            "--worker-id",
            id,
        ])
        .arg("--bind")
        .arg(bind.to_string())
        .args(extra)
        .env("MXSCOPE_TOKEN", WORKER_TOKEN)
        .env("MXSCOPE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(log_dir.join(format!("{id}.log"))).context("worker log")?,
        ));
        Ok(Self {
            daemon: Daemon::spawn(id, cmd)?,
        })
    }

    /// SIGKILL: the worker crashes.
    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// SIGTERM, then wait.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.daemon.terminate(Duration::from_secs(30))
    }
}

/// Poll `check` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scan options aimed at the lab: its resolver, its CA, loopback allowed.
pub fn lab_options() -> mxscope_coordinator::model::ScanOptions {
    mxscope_coordinator::model::ScanOptions {
        ehlo_name: "probe.mxscope.lab.test".into(),
        port: crate::plan::SMTP_PORT,
        timeout_session_ms: 10_000,
        resolvers: vec![crate::lab::dns().addr().to_string()],
        ca_pem: Some(std::fs::read_to_string(&crate::lab::certs().ca_pem).expect("the lab CA")),
        allow_private: true,
        ..Default::default()
    }
}
