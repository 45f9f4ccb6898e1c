//! `mxscope-perf-lab soak MINUTES [DOMAINS]`: a coordinator and two workers
//! scan the performance lab again and again while a chaos loop SIGKILLs a
//! random process (and starts it again), fills the data disk (a tmpfs the
//! soak mounts) and frees it, and an abusive client ([`crate::runs::abuse`]) runs
//! throughout. Prints, per scan, its time and records lost or counted twice
//! (both must be 0), and each process's RSS over time (it must be flat). A
//! benchmark, not a test: the exit status says whether nothing was lost.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mxscope_common::Record;
use mxscope_coordinator::grpc::client::AdminClient;
use mxscope_coordinator::model::{ScanOptions, ScanState};

use crate::perf::bench::Bench;
use crate::perf::client::rss_of;
use crate::perf::smtp::Population;
use crate::perf::{self, PERF_SMTP_PORT};
use crate::runs::abuse::{self, Abuse, Tally};
use crate::runs::cluster::{CoordinatorProcess, WorkerProcess, ADMIN_TOKEN, WORKER_TOKEN};

/// The coordinator's fixed port (a restart keeps it: workers keep their URL).
const PORT: u16 = 7447;
/// Size of the data disk.
const DISK_MIB: u64 = 4096;

/// The processes under test and how to start each again.
struct Fleet {
    data: PathBuf,
    logs: PathBuf,
    coordinator: CoordinatorProcess,
    workers: Vec<WorkerProcess>,
    restarts: BTreeMap<&'static str, u32>,
}

impl Fleet {
    fn url() -> String {
        format!("http://127.0.0.1:{PORT}")
    }

    async fn start_coordinator(data: &Path) -> anyhow::Result<CoordinatorProcess> {
        // The port and sled's lock are free once the killed process is reaped.
        let mut last = None;
        for _ in 0..100 {
            match CoordinatorProcess::start_on(data, "5s", &format!("127.0.0.1:{PORT}")) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt")))
    }

    fn start_worker(logs: &Path, i: usize) -> anyhow::Result<WorkerProcess> {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 9, 10 + i as u8));
        WorkerProcess::start(&Self::url(), "S", source, &format!("worker-{i}"), logs)
    }

    /// SIGKILL one process and start it again.
    async fn kill(&mut self, which: usize) -> anyhow::Result<&'static str> {
        let name = if which == 0 {
            self.coordinator.kill9();
            self.coordinator = Self::start_coordinator(&self.data).await?;
            "coordinator"
        } else {
            let i = which - 1;
            self.workers[i].kill9();
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.workers[i] = Self::start_worker(&self.logs, i)?;
            if i == 0 {
                "worker-0"
            } else {
                "worker-1"
            }
        };
        *self.restarts.entry(name).or_default() += 1;
        Ok(name)
    }

    fn rss(&self) -> [u64; 3] {
        let mib = |pid| rss_of(pid).unwrap_or(0) >> 20;
        [
            mib(self.coordinator.pid()),
            mib(self.workers[0].pid()),
            mib(self.workers[1].pid()),
        ]
    }
}

/// A tmpfs of `DISK_MIB` on `dir` (unmounted by [`Disk::drop`]).
struct Disk {
    dir: PathBuf,
}

impl Disk {
    fn mount(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let _ = std::process::Command::new("umount")
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={DISK_MIB}m")])
            .arg("tmpfs")
            .arg(dir)
            .status()
            .context("mount")?;
        anyhow::ensure!(
            status.success(),
            "mounting a tmpfs on {} (root needed)",
            dir.display()
        );
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Fill the disk but 64 KiB with one file for `span`, on a thread of
    /// its own (the scans go on meanwhile); `full` is true until it is
    /// freed.
    fn fill_for(&self, span: Duration, full: Arc<AtomicBool>) {
        full.store(true, Ordering::SeqCst);
        let dir = self.dir.clone();
        std::thread::spawn(move || {
            let filler = fill(&dir);
            std::thread::sleep(span);
            if let Ok(path) = filler {
                let _ = std::fs::remove_file(path);
            }
            full.store(false, Ordering::SeqCst);
        });
    }
}

/// Fill the disk at `dir` but 64 KiB with one file; its path.
fn fill(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("filler");
    let free = free_bytes(dir).unwrap_or(0).saturating_sub(64 << 10);
    let file = std::fs::File::create(&path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = free;
    let mut out = std::io::BufWriter::new(file);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if std::io::Write::write_all(&mut out, &chunk[..n]).is_err() {
            break;
        }
        left -= n as u64;
    }
    drop(out);
    Ok(path)
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes into the struct we own; `c` is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

/// xorshift: the chaos loop's dice (seeded by the clock, printed).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What one scan gave.
struct Round {
    scan: String,
    wall: Duration,
    domains_lost: usize,
    domains_twice: usize,
    targets_lost: usize,
    targets_twice: usize,
}

pub async fn soak(minutes: u64, domains: usize) -> anyhow::Result<()> {
    let bench = Bench::new("soak", domains)?;
    let lab = bench.servers(domains, Population::default()).await?;
    // The data directory is the tmpfs itself (the coordinator's log is beside it).
    let disk = Disk::mount(&bench.dir.join("data"))?;
    let data = disk.dir.clone();
    let logs = bench.dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let coordinator = Fleet::start_coordinator(&data).await?;
    let workers = vec![
        Fleet::start_worker(&logs, 0)?,
        Fleet::start_worker(&logs, 1)?,
    ];
    let mut fleet = Fleet {
        data,
        logs: logs.clone(),
        coordinator,
        workers,
        restarts: BTreeMap::new(),
    };
    let list: Vec<String> = (0..domains).map(perf::domain).collect();
    let expected_targets: BTreeSet<IpAddr> = (0..domains).map(perf::address).collect();
    let options = ScanOptions {
        ehlo_name: "soak.mxscope.test".into(),
        port: PERF_SMTP_PORT,
        resolvers: vec![bench.dns.addr.to_string()],
        allow_private: true,
        network_rate_milli: Some(0),
        ip_gap_ms: Some(0),
        timeout_session_ms: 10_000,
        ..ScanOptions::default()
    };
    let tally = Arc::new(Tally::default());
    let addr: SocketAddr = format!("127.0.0.1:{PORT}").parse()?;
    let _abuser = abuse::start(
        Abuse {
            addr,
            worker_token: WORKER_TOKEN.into(),
            admin_token: ADMIN_TOKEN.into(),
            idle: 300,
            garbage: 10,
            submissions: 0,
            names: 0,
            held_token: "not-a-token".into(),
            held_connections: 2,
            held_streams: 8,
            message_bytes: 4 << 20,
            oversized: usize::MAX,
        },
        tally.clone(),
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    let mut dice = Dice(seed);
    println!(
        "mxscope-perf-lab soak: {minutes} min, {domains} domains a scan, a coordinator and two \
         workers, data on a {DISK_MIB} MiB tmpfs, chaos seed {seed}"
    );
    println!("  minute   coordinator MiB   worker-0 MiB   worker-1 MiB   event");
    let started = Instant::now();
    let until = started + Duration::from_secs(minutes * 60);
    let mut rounds: Vec<Round> = Vec::new();
    let mut next_chaos = Instant::now() + Duration::from_secs(10 + dice.below(20));
    let mut next_sample = Instant::now();
    let full = Arc::new(AtomicBool::new(false));
    let mut was_full = false;
    let mut round: Option<(String, Instant)> = None;
    let mut events = 0u32;
    let mut fills = 0u32;
    while Instant::now() < until || round.is_some() {
        let now = Instant::now();
        let mut event = String::new();
        let is_full = full.load(Ordering::SeqCst);
        if was_full && !is_full {
            event = "disk freed".into();
        }
        was_full = is_full;
        // No kill while the disk is full: a restarted coordinator needs room to open.
        if !is_full && now >= next_chaos && now < until {
            events += 1;
            next_chaos = now + Duration::from_secs(15 + dice.below(30));
            match dice.below(4) {
                3 => {
                    disk.fill_for(Duration::from_secs(20), full.clone());
                    was_full = true;
                    fills += 1;
                    event.push_str(" disk filled for 20 s");
                }
                which => {
                    let killed = fleet.kill(which as usize).await?;
                    event.push_str(&format!(" SIGKILL {killed}"));
                }
            }
        }
        if now >= next_sample || !event.is_empty() {
            let [c, w0, w1] = fleet.rss();
            println!(
                "  {:>6.1}   {c:>15}   {w0:>12}   {w1:>12}   {event}",
                started.elapsed().as_secs_f64() / 60.0
            );
            if now >= next_sample {
                next_sample = now + Duration::from_secs(60);
            }
        }
        match &round {
            None if now < until => {
                let name = format!("soak-{}", rounds.len() + 1);
                if let Some(scan) = submit(&name, &options, &list).await {
                    round = Some((scan, now));
                }
            }
            None => break,
            Some((scan, at)) => {
                if done(scan).await {
                    let r = check(scan, *at, &list, &expected_targets).await?;
                    println!(
                        "  scan {}: {:.1} s, {:.0} domains/s; lost {} domains, {} targets; twice {} domains, {} targets",
                        r.scan,
                        r.wall.as_secs_f64(),
                        domains as f64 / r.wall.as_secs_f64(),
                        r.domains_lost,
                        r.targets_lost,
                        r.domains_twice,
                        r.targets_twice
                    );
                    rounds.push(r);
                    round = None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    while full.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lost: usize = rounds.iter().map(|r| r.domains_lost + r.targets_lost).sum();
    let twice: usize = rounds
        .iter()
        .map(|r| r.domains_twice + r.targets_twice)
        .sum();
    println!(
        "soak: {} scans in {:.1} min, {events} chaos events ({fills} disk fills, restarts {:?}); \
         records lost {lost}, counted twice {twice}; abuse: {}",
        rounds.len(),
        started.elapsed().as_secs_f64() / 60.0,
        fleet.restarts,
        tally.line()
    );
    let log =
        std::fs::read_to_string(fleet.data.with_extension("coordinator.log")).unwrap_or_default();
    println!(
        "coordinator log: {} 'cannot write the data directory' lines, {} 'writable again'",
        log.matches("cannot write the data directory").count(),
        log.matches("writable again").count()
    );
    lab.stop().await;
    anyhow::ensure!(
        lost == 0 && twice == 0,
        "records were lost or counted twice"
    );
    Ok(())
}

async fn admin() -> Option<AdminClient> {
    AdminClient::connect(&Fleet::url(), Some(ADMIN_TOKEN), None)
        .await
        .ok()
}

/// Submit the list as scan `name`; its id, also when the call failed after
/// the coordinator stored it (a kill mid-call).
async fn submit(name: &str, options: &ScanOptions, list: &[String]) -> Option<String> {
    let mut admin = admin().await?;
    let labels = BTreeMap::from([("soak".to_string(), name.to_string())]);
    match admin
        .submit(
            name.into(),
            labels,
            vec!["S".into()],
            options,
            false,
            list.to_vec(),
        )
        .await
    {
        Ok(s) => Some(s.scan_id),
        Err(_) => {
            let scans = admin.list().await.ok()?;
            scans
                .into_iter()
                .find(|s| s.meta.name == name)
                .map(|s| s.meta.id)
        }
    }
}

async fn done(scan: &str) -> bool {
    let Some(mut admin) = admin().await else {
        return false;
    };
    matches!(admin.status(scan).await, Ok(s) if s.meta.state == ScanState::Done)
}

/// Export `scan` (retrying while the coordinator restarts) and count.
async fn check(
    scan: &str,
    at: Instant,
    list: &[String],
    targets: &BTreeSet<IpAddr>,
) -> anyhow::Result<Round> {
    let wall = at.elapsed();
    // Reads may fail while the disk is full (sled refuses them after a
    // failed write until the coordinator reopens it): up to 5 minutes.
    for _ in 0..300 {
        let Some(mut admin) = admin().await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let (mut names, mut ips) = (Vec::new(), Vec::new());
        let exported = admin
            .stream_results(scan, |r| {
                match r {
                    Record::Domain(d) => names.push(d.domain),
                    Record::Target(t) => ips.push(t.ip),
                }
                Ok(())
            })
            .await;
        if exported.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let unique_names: BTreeSet<&String> = names.iter().collect();
        let unique_ips: BTreeSet<&IpAddr> = ips.iter().collect();
        return Ok(Round {
            scan: scan.to_string(),
            wall,
            domains_lost: list.iter().filter(|d| !unique_names.contains(d)).count(),
            domains_twice: names.len() - unique_names.len(),
            targets_lost: targets.iter().filter(|ip| !unique_ips.contains(ip)).count(),
            targets_twice: ips.len() - unique_ips.len(),
        });
    }
    anyhow::bail!("scan {scan} could not be exported for 5 minutes")
}
