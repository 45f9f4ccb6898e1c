//! The performance lab as processes: one process has at most
//! `RLIMIT_NOFILE` descriptors (20,000 on the development machine, and an
//! unprivileged process cannot raise the hard limit), so the lab's
//! [`crate::perf::smtp`] servers run as children of `mxscope-perf-lab`,
//! [`PART`] addresses each (`mxscope-perf-lab serve FIRST COUNT ...`). A
//! child reports its counters on stdout every 100 ms and exits when its
//! stdin closes (the parent died).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::perf::smtp::{self, Acceptors, PerfCerts, Population, Stats};
use crate::perf::{self, PERF_SMTP_PORT};

/// Addresses per server process (its listeners, and room for as many
/// connections under a 20,000 descriptor limit).
pub const PART: usize = 8_000;

/// Counters of one child.
#[derive(Debug, Default)]
struct Counters {
    open: AtomicUsize,
    accepted: AtomicUsize,
    handshakes: AtomicUsize,
}

/// The lab's SMTP servers for domains `0..domains`.
#[derive(Debug)]
pub struct LabServers {
    children: Vec<Child>,
    counters: Vec<Arc<Counters>>,
}

impl LabServers {
    /// Start the servers (this program's `serve` subcommand) and wait until
    /// every one has bound its addresses.
    pub async fn start(
        program: &Path,
        domains: usize,
        population: Population,
        greeting_delay: Duration,
        cert_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut lab = Self {
            children: Vec::new(),
            counters: Vec::new(),
        };
        let mut first = 0;
        while first < domains {
            let count = PART.min(domains - first);
            let mut child = Command::new(program)
                .arg("serve")
                .arg(first.to_string())
                .arg(count.to_string())
                .arg(population.tarpit_permille.to_string())
                .arg(population.refuse_permille.to_string())
                .arg(greeting_delay.as_millis().to_string())
                .arg(cert_dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting a perf lab server process")?;
            let stdout = child.stdout.take().context("server stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
                .await
                .context("a server process did not get ready")??;
            anyhow::ensure!(
                ready.as_deref() == Some("ready"),
                "a server process failed: {ready:?}"
            );
            let counters = Arc::new(Counters::default());
            let mine = counters.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    let numbers: Vec<usize> = line
                        .split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect();
                    if let [open, accepted, handshakes] = numbers[..] {
                        mine.open.store(open, Ordering::Relaxed);
                        mine.accepted.store(accepted, Ordering::Relaxed);
                        mine.handshakes.store(handshakes, Ordering::Relaxed);
                    }
                }
            });
            lab.children.push(child);
            lab.counters.push(counters);
            first += count;
        }
        Ok(lab)
    }

    /// Connections open now, over all servers (as of their last report).
    pub fn open(&self) -> usize {
        self.sum(|c| &c.open)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.sum(|c| &c.accepted)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.sum(|c| &c.handshakes)
    }

    fn sum(&self, field: impl Fn(&Counters) -> &AtomicUsize) -> usize {
        self.counters
            .iter()
            .map(|c| field(c).load(Ordering::Relaxed))
            .sum()
    }

    /// Stop every server.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
    }
}

/// `mxscope-perf-lab serve FIRST COUNT TARPIT‰ REFUSE‰ DELAY_MS CERT_DIR`:
/// serve addresses `FIRST..FIRST+COUNT`, print `ready`, then `open accepted
/// handshakes` every 100 ms until stdin closes.
pub async fn serve_part(args: &[String]) -> anyhow::Result<()> {
    let number = |i: usize| -> anyhow::Result<usize> {
        args.get(i)
            .context("serve FIRST COUNT TARPIT‰ REFUSE‰ DELAY_MS CERT_DIR")?
            .parse()
            .context("a number")
    };
    let (first, count) = (number(0)?, number(1)?);
    let population = Population {
        tarpit_permille: u32::try_from(number(2)?)?,
        refuse_permille: u32::try_from(number(3)?)?,
    };
    let delay = Duration::from_millis(u64::try_from(number(4)?)?);
    let cert_dir = PathBuf::from(args.get(5).context("CERT_DIR")?);
    anyhow::ensure!(
        first + count <= perf::MAX_DOMAINS,
        "beyond the address plan"
    );
    mxscope_worker::limits::ensure_open_files(2 * count + 64).context("RLIMIT_NOFILE")?;
    let certs = PerfCerts::read(&cert_dir)?;
    let acceptors = Acceptors::new(&certs)?;
    let addrs: Vec<_> = (first..first + count)
        .map(|i| (perf::address(i), population.mode(i)))
        .collect();
    let stats = Arc::new(Stats::default());
    smtp::serve(&addrs, PERF_SMTP_PORT, &acceptors, delay, stats.clone()).await?;
    println!("ready");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            read = stdin.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) {
                return Ok(());
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                println!("{} {} {}", stats.open(), stats.accepted(), stats.handshakes());
            }
        }
    }
}
