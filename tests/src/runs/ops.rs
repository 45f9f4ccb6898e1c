//! The operations side of the cluster: a real Prometheus (Debian's
//! `prometheus` package) scraping the processes' `--metrics-listen`
//! endpoints, `promtool`, and a tiny bounded HTTP GET for the tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::process::Daemon;

/// Largest HTTP answer read.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// `GET path` on `addr` (HTTP/1.0, no keep-alive): (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.take(MAX_ANSWER).read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("an HTTP answer without a head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("an HTTP answer without a status")?;
    Ok((status, body.to_string()))
}

/// `promtool check metrics` on a scrape of `addr`: its complaints, if any.
pub fn promtool_check(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = http_get(addr, "/metrics")?;
    if status != 200 {
        bail!("/metrics on {addr} answered {status}");
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("promtool (Debian's prometheus package; tests/lab/install.sh)")?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(body.as_bytes())?;
    let out = child.wait_with_output()?;
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && complaints.trim().is_empty() {
        bail!("promtool failed: {}", out.status);
    }
    Ok(complaints.trim().to_string())
}

/// A Prometheus server scraping `targets` every second.
#[derive(Debug)]
pub struct Prometheus {
    _daemon: Daemon,
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Start on `addr` with its data under `dir`; `targets` are (job, address).
    pub fn start(
        dir: &Path,
        addr: SocketAddr,
        targets: &[(&str, SocketAddr)],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n",
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(
                dir.join("prometheus.log"),
            )?));
        let daemon = Daemon::spawn("prometheus", cmd)?;
        let prometheus = Self {
            _daemon: daemon,
            addr,
        };
        for _ in 0..100 {
            if matches!(http_get(addr, "/-/ready"), Ok((200, _))) {
                return Ok(prometheus);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "prometheus on {addr} not ready within 10 s (see {})",
            dir.join("prometheus.log").display()
        )
    }

    /// An instant query's result: (labels, value) per series.
    pub fn query(&self, promql: &str) -> anyhow::Result<Vec<(serde_json::Value, f64)>> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = http_get(self.addr, &format!("/api/v1/query?query={encoded}"))?;
        if status != 200 {
            bail!("query {promql:?}: {status} {body}");
        }
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        let series = answer["data"]["result"]
            .as_array()
            .context("no result in the answer")?;
        Ok(series
            .iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (s["metric"].clone(), value)
            })
            .collect())
    }

    /// The single value of `promql`, if it has one.
    pub fn scalar(&self, promql: &str) -> Option<f64> {
        match self.query(promql).ok()?.as_slice() {
            [(_, value)] => Some(*value),
            _ => None,
        }
    }
}
