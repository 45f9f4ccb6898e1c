//! `mxscope-lab bench-tls-depth`: sessions and wall time of
//! `--tls-depth classes`, `vulns` and `suites` against sslyze's and
//! testssl.sh's full runs on the same lab hosts, sessions counted at the
//! server's door (a counting TCP relay in front of each host), with the
//! accepted suites and findings side by side. A benchmark, not a test:
//! it prints, it asserts nothing. Only ever talks to the lab on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mxscope_common::{DepthLevel, SuiteClass, TargetRecord};
use mxscope_worker::probe::Prober;
use tokio::net::{TcpListener, TcpStream};

use crate::lab;
use crate::plan::{self, Host};
use crate::runs::probing::config;

/// A relay on `127.0.0.1:0` to `host:25` that counts the connections it accepts.
struct Door {
    addr: SocketAddr,
    count: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Door {
    async fn open(host: Host) -> anyhow::Result<Self> {
        anyhow::ensure!(host.ip.is_loopback(), "the lab is on loopback only");
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        let upstream = SocketAddr::new(host.ip, plan::SMTP_PORT);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let Ok(Ok(mut server)) =
                        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream))
                            .await
                    else {
                        return;
                    };
                    let relay = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let _ = tokio::time::timeout(Duration::from_secs(60), relay).await;
                });
            }
        });
        Ok(Self { addr, count, task })
    }

    fn take(&self) -> u64 {
        self.count.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One tool's run on one host.
struct Run {
    tool: &'static str,
    sessions: u64,
    seconds: f64,
    /// Accepted suites per version, when the tool lists them.
    suites: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Suite classes accepted over all versions (ours: from the record).
    classes: BTreeSet<SuiteClass>,
    /// What the tool calls a weakness: our finding ids; testssl.sh's ids of
    /// items rated LOW or worse (sslyze rates nothing: its classes say it).
    findings: BTreeSet<String>,
}

pub async fn run() -> anyhow::Result<()> {
    lab::postfix();
    lab::exim();
    let hosts = [
        plan::MX_VALID,
        plan::MX_WEAK,
        plan::MX_PREFER,
        plan::MX_AEAD,
        plan::MX_EXIM,
    ];
    let testssl = which("testssl.sh").or_else(|| which("testssl"));
    println!("host                   tool              sessions  seconds  accepted ssl3/1.0/1.1/1.2/1.3   classes                                  findings");
    for host in hosts {
        let door = Door::open(host).await?;
        let mut runs = Vec::new();
        for level in [DepthLevel::Classes, DepthLevel::Vulns, DepthLevel::Suites] {
            door.take();
            let started = Instant::now();
            let record = ours(host, door.addr, level).await;
            runs.push(Run {
                tool: match level {
                    DepthLevel::Classes => "mxscope classes",
                    DepthLevel::Vulns => "mxscope vulns",
                    _ => "mxscope suites",
                },
                sessions: door.take(),
                seconds: started.elapsed().as_secs_f64(),
                suites: (level == DepthLevel::Suites).then(|| accepted(&record)),
                classes: record
                    .tls_depth
                    .as_ref()
                    .map(|d| d.classes().collect())
                    .unwrap_or_default(),
                findings: record.findings.iter().map(|f| f.id.name()).collect(),
            });
        }
        door.take();
        let started = Instant::now();
        let addr = door.addr;
        let suites = tokio::task::spawn_blocking(move || sslyze(addr)).await??;
        runs.push(Run {
            tool: "sslyze (full)",
            sessions: door.take(),
            seconds: started.elapsed().as_secs_f64(),
            classes: classes_of(&suites),
            suites: Some(suites),
            findings: BTreeSet::new(),
        });
        if let Some(testssl) = testssl.clone() {
            let started = Instant::now();
            let addr = door.addr;
            let findings =
                tokio::task::spawn_blocking(move || testssl_run(&testssl, addr)).await??;
            runs.push(Run {
                tool: "testssl.sh (full)",
                sessions: door.take(),
                seconds: started.elapsed().as_secs_f64(),
                suites: None,
                classes: BTreeSet::new(),
                findings,
            });
        }
        let oracle = runs
            .iter()
            .find(|r| r.tool.starts_with("sslyze"))
            .and_then(|r| r.suites.clone());
        for r in &runs {
            let counts = r.suites.as_ref().map_or_else(
                || "-".to_string(),
                |s| {
                    ["ssl3", "tls1_0", "tls1_1", "tls1_2", "tls1_3"]
                        .iter()
                        .map(|v| s.get(*v).map_or(0, BTreeSet::len).to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                },
            );
            let same = match (&r.suites, &oracle) {
                (Some(ours), Some(theirs)) if r.tool.starts_with("mxscope") => {
                    if covers(ours, theirs) {
                        " (sslyze's sets)"
                    } else {
                        " (DIFFERS from sslyze)"
                    }
                }
                _ => "",
            };
            let classes: Vec<&str> = r.classes.iter().map(|c| c.name()).collect();
            let findings: Vec<&str> = r.findings.iter().map(String::as_str).collect();
            println!(
                "{:<22} {:<17} {:>8} {:>8.1}  {:<28} {:<40} {}",
                host.name,
                r.tool,
                r.sessions,
                r.seconds,
                format!("{counts}{same}"),
                classes.join(","),
                findings.join(",")
            );
        }
    }
    if testssl.is_none() {
        println!("(testssl.sh not found: `apt-get install testssl.sh` to add its row)");
    }
    Ok(())
}

async fn ours(host: Host, door: SocketAddr, level: DepthLevel) -> TargetRecord {
    let mut config = config(None, true);
    config.port = door.port();
    config.depth = level;
    Prober::new(config, crate::runs::probing::lab_tls())
        .probe_target(door.ip(), vec![host.name.to_string()])
        .await
}

fn accepted(record: &TargetRecord) -> BTreeMap<String, BTreeSet<String>> {
    record
        .tls_depth
        .iter()
        .flat_map(|d| d.versions.iter())
        .filter(|(_, v)| !v.accepted.is_empty())
        .map(|(k, v)| (k.clone(), v.accepted.iter().cloned().collect()))
        .collect()
}

/// Ours holds every suite sslyze accepted, per version, and nothing sslyze
/// tried and saw refused (suites sslyze cannot offer may be extra).
fn covers(
    ours: &BTreeMap<String, BTreeSet<String>>,
    theirs: &BTreeMap<String, BTreeSet<String>>,
) -> bool {
    theirs
        .iter()
        .all(|(v, set)| ours.get(v).is_some_and(|o| o.is_superset(set)))
        && ours.keys().all(|v| theirs.contains_key(v))
}

fn classes_of(suites: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<SuiteClass> {
    suites
        .values()
        .flatten()
        .flat_map(|s| SuiteClass::of_suite(s))
        .collect()
}

fn sslyze(addr: SocketAddr) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    Ok(crate::runs::sslyze::run(addr, &[])?.accepted)
}

/// Run testssl.sh in full; the ids of the items it rates LOW or worse.
fn testssl_run(binary: &str, addr: SocketAddr) -> anyhow::Result<BTreeSet<String>> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("testssl.json");
    let out = Command::new(binary)
        .args([
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "--nodns",
            "none",
        ])
        .args(["--starttls", "smtp"])
        .arg("--jsonfile")
        .arg(&json)
        .arg(addr.to_string())
        .output()
        .with_context(|| format!("running {binary}"))?;
    anyhow::ensure!(
        !out.stdout.is_empty(),
        "{binary} printed nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter(|item| {
            matches!(
                item["severity"].as_str(),
                Some("LOW" | "MEDIUM" | "HIGH" | "CRITICAL")
            )
        })
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        // Certificate items: the lab CA is not in testssl.sh's stores.
        .filter(|id| !id.starts_with("cert_"))
        .collect())
}

fn which(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!path.is_empty()).then_some(path)
}
