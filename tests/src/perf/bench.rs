//! The benchmarks of `mxscope-perf-lab` (not tests): each prints mxscope's
//! number beside a baseline measured in the same run. Run them in a network
//! namespace of your own (the lab's addresses are fixed) from
//! `target/release`.
//!
//! - [`throughput`]: targets/s of `mxscope scan` at concurrency 1,000 and
//!   10,000, all-fast and with 5 % tarpits, beside a bare STARTTLS client;
//!   sessions in flight while targets remain.
//! - [`cpu`]: worker CPU per STARTTLS probe against a bare rustls client's.
//! - [`rss`]: worker RSS per in-flight session at N tarpitted sessions.
//! - [`dns`]: MX + A (+ AAAA) lookups per second per core against the lab DNS.
//! - [`openssl`]: the seed's serial `openssl s_client` loop on a sample,
//!   extrapolated, beside `mxscope scan` of the whole lab.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::Command;

use crate::perf::client::{self, cpu_seconds};
use crate::perf::lab::LabServers;
use crate::perf::smtp::{PerfCerts, Population};
use crate::perf::{self, PerfDns, PERF_SMTP_PORT};
use crate::runs::cluster::{bin, CoordinatorProcess, WorkerProcess, ADMIN_TOKEN};

/// Everything a benchmark shares: its folder, certificates, DNS, program.
#[derive(Debug)]
pub struct Bench {
    pub dir: PathBuf,
    pub certs: PerfCerts,
    pub cert_dir: PathBuf,
    pub dns: PerfDns,
    pub program: PathBuf,
    pub domains: usize,
}

impl Bench {
    /// A fresh folder, certificates and a zone of `domains`.
    pub fn new(name: &str, domains: usize) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join("mxscope-perf-lab").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let certs = PerfCerts::generate()?;
        let cert_dir = dir.join("certs");
        certs.write(&cert_dir)?;
        let dns = PerfDns::start(&dir.join("unbound"), domains)?;
        mxscope_worker::limits::ensure_open_files(19_000).context("RLIMIT_NOFILE")?;
        Ok(Self {
            dir,
            certs,
            cert_dir,
            dns,
            program: std::env::current_exe()?,
            domains,
        })
    }

    pub(crate) async fn servers(
        &self,
        domains: usize,
        population: Population,
    ) -> anyhow::Result<LabServers> {
        LabServers::start(
            &self.program,
            domains,
            population,
            Duration::ZERO,
            &self.cert_dir,
        )
        .await
    }

    fn list(&self, name: &str, indices: impl Iterator<Item = usize>) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        let text: String = indices.map(|i| perf::domain(i) + "\n").collect();
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// `mxscope scan` of `list` without pacing; (wall time, sessions in
    /// flight sampled every 100 ms from the first session while fewer than
    /// `targets` sessions were accepted).
    async fn scan(
        &self,
        list: &Path,
        targets: usize,
        concurrency: usize,
        greeting_s: u64,
        lab: &LabServers,
    ) -> anyhow::Result<(Duration, Vec<usize>)> {
        let data = self
            .dir
            .join(format!("data-{concurrency}-{}", lab.accepted()));
        let started = Instant::now();
        let mut child = Command::new(bin("mxscope"))
            .arg("scan")
            .arg(list)
            .arg("--data-dir")
            .arg(&data)
            .args(["--resolver", &self.dns.addr.to_string()])
            .args(["--port", &PERF_SMTP_PORT.to_string()])
            .args(["--allow-private", "--json"])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--timeout-greeting", &format!("{greeting_s}s")])
            .args(["--timeout-session", &format!("{}s", greeting_s * 2)])
            .args(["--network-rate", "0", "--vantage-rate", "0"])
            .args(["--retry-attempts", "1"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("scan.stderr"))?)
            .kill_on_drop(true)
            .spawn()
            .context("starting mxscope scan (build with --release first)")?;
        let (status, samples) = sampled(lab, targets, child.wait()).await;
        let status = status?;
        anyhow::ensure!(status.success(), "mxscope scan failed: {status}");
        Ok((started.elapsed(), samples))
    }
}

/// Run `work`, sampling the sessions open at `lab` every 100 ms from the
/// first session it opens until every one of `targets` had one.
async fn sampled<T>(
    lab: &LabServers,
    targets: usize,
    work: impl std::future::Future<Output = T>,
) -> (T, Vec<usize>) {
    let accepted_before = lab.accepted();
    let mut samples = Vec::new();
    tokio::pin!(work);
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            done = &mut work => return (done, samples),
            _ = ticks.tick() => {
                let accepted = lab.accepted() - accepted_before;
                if accepted > 0 && accepted < targets {
                    samples.push(lab.open());
                }
            }
        }
    }
}

/// (min, 10th percentile, median) of `samples`.
fn spread(samples: &[usize]) -> (usize, usize, usize) {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let at = |q: f64| {
        s.get(((s.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    (at(0.0), at(0.1), at(0.5))
}

/// Targets per second at concurrency 1,000 and 10,000 over `domains`
/// targets, all fast and with 5 % tarpits (greeting timeout `greeting_s`).
pub async fn throughput(domains: usize, greeting_s: u64) -> anyhow::Result<()> {
    let bench = Bench::new("throughput", domains)?;
    let targets: Vec<IpAddr> = (0..domains).map(perf::address).collect();
    let list = bench.list("domains.txt", 0..domains)?;
    println!("mxscope-perf-lab throughput: {domains} targets, greeting timeout {greeting_s}s");
    println!("  population    conc.  bare client (t/s)   mxscope scan (t/s)   ratio   in flight while targets remain (open at the servers): min / p10 / p50 (% of conc.)");
    for (label, tarpit_permille) in [("all fast", 0), ("5 % tarpits", 50)] {
        let population = Population {
            tarpit_permille,
            refuse_permille: 0,
        };
        let lab = bench.servers(domains, population).await?;
        for concurrency in [1_000usize, 10_000] {
            let (base, base_samples) = sampled(
                &lab,
                domains,
                client::bare_starttls(
                    &targets,
                    PERF_SMTP_PORT,
                    &bench.certs,
                    concurrency,
                    Duration::from_secs(greeting_s),
                ),
            )
            .await;
            let base = base?;
            let (wall, samples) = bench
                .scan(&list, domains, concurrency, greeting_s, &lab)
                .await?;
            let base_rate = domains as f64 / base.wall.as_secs_f64();
            let rate = domains as f64 / wall.as_secs_f64();
            let pct = |n: usize| 100.0 * n as f64 / concurrency.min(domains) as f64;
            let spread_of = |samples: &[usize]| {
                let (min, p10, p50) = spread(samples);
                format!(
                    "{min} / {p10} / {p50} ({:.0} / {:.0} / {:.0} %)",
                    pct(min),
                    pct(p10),
                    pct(p50)
                )
            };
            println!(
                "  {label:<12} {concurrency:>6}  {:>7.1} s {base_rate:>7.0}   {:>7.1} s {rate:>7.0}   {:>5.2}   mxscope {}; bare {}  [bare ok {} failed {}]",
                base.wall.as_secs_f64(),
                wall.as_secs_f64(),
                rate / base_rate,
                spread_of(&samples),
                spread_of(&base_samples),
                base.ok,
                base.failed,
            );
        }
        lab.stop().await;
    }
    Ok(())
}

/// The lab of `domains` (`tarpit_permille` of them tarpits) kept up until
/// Ctrl-C, for scans of one's own: prints the command line, then the
/// sessions open at the servers every second.
pub async fn up(domains: usize, tarpit_permille: u32) -> anyhow::Result<()> {
    let bench = Bench::new("up", domains)?;
    let list = bench.list("domains.txt", 0..domains)?;
    let lab = bench
        .servers(
            domains,
            Population {
                tarpit_permille,
                refuse_permille: 0,
            },
        )
        .await?;
    println!(
        "lab up: {domains} domains ({tarpit_permille} ‰ tarpits); in this namespace run\n  \
         target/release/mxscope scan {} --data-dir DIR --resolver {} --port {PERF_SMTP_PORT} \
         --allow-private --network-rate 0 --vantage-rate 0 --concurrency N\nCtrl-C stops the lab.",
        list.display(),
        bench.dns.addr
    );
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = ticks.tick() => println!("open {} accepted {}", lab.open(), lab.accepted()),
        }
    }
    lab.stop().await;
    Ok(())
}

/// Worker CPU per STARTTLS probe (`mxscope-worker probe`, DNS included)
/// against a bare rustls client's per handshake, `n` targets per certificate.
pub async fn cpu(n: usize) -> anyhow::Result<()> {
    let bench = Bench::new("cpu", 2 * n)?;
    let lab = bench.servers(2 * n, Population::default()).await?;
    println!("mxscope-perf-lab cpu: {n} STARTTLS probes per certificate, concurrency 64");
    println!("  certificate    worker CPU/probe   bare client CPU/handshake   ratio");
    for (label, parity) in [("RSA-2048", 0usize), ("ECDSA P-256", 1)] {
        let indices: Vec<usize> = (0..n).map(|k| 2 * k + parity).collect();
        let list = bench.list(&format!("cpu-{parity}.txt"), indices.iter().copied())?;
        let before = cpu_seconds(true);
        let status = Command::new(bin("mxscope-worker"))
            .args(["probe", "-f"])
            .arg(&list)
            .args(["--resolver", &bench.dns.addr.to_string()])
            .args(["--port", &PERF_SMTP_PORT.to_string()])
            .args(["--allow-private", "--json", "--concurrency", "64"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "mxscope-worker probe failed: {status}");
        let worker = cpu_seconds(true) - before;
        let before = cpu_seconds(true);
        let status = Command::new(&bench.program)
            .args(["client", &parity.to_string(), &n.to_string(), "2", "64"])
            .arg(&bench.cert_dir)
            .stdout(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "the bare client failed: {status}");
        let bare = cpu_seconds(true) - before;
        let per = |s: f64| 1e3 * s / n as f64;
        println!(
            "  {label:<13} {:>10.3} ms        {:>10.3} ms               {:>5.2}",
            per(worker),
            per(bare),
            worker / bare.max(1e-9)
        );
    }
    println!(
        "  ({} TLS handshakes completed at the servers)",
        lab.handshakes()
    );
    lab.stop().await;
    Ok(())
}

/// `client PARITY N STEP CONCURRENCY CERT_DIR`: the bare client on
/// addresses PARITY, PARITY+STEP, ... (N of them).
pub async fn client(args: &[String]) -> anyhow::Result<()> {
    let number = |i: usize| -> anyhow::Result<usize> {
        args.get(i)
            .context("client FIRST N STEP CONCURRENCY CERT_DIR")?
            .parse()
            .context("a number")
    };
    let (first, n, step, concurrency) = (number(0)?, number(1)?, number(2)?, number(3)?);
    let certs = PerfCerts::read(Path::new(args.get(4).context("CERT_DIR")?))?;
    mxscope_worker::limits::ensure_open_files(concurrency + 64).context("RLIMIT_NOFILE")?;
    let targets: Vec<IpAddr> = (0..n).map(|k| perf::address(first + k * step)).collect();
    let run = client::bare_starttls(
        &targets,
        PERF_SMTP_PORT,
        &certs,
        concurrency,
        Duration::from_secs(10),
    )
    .await?;
    println!("{} {} {}", run.ok, run.failed, run.wall.as_millis());
    anyhow::ensure!(run.failed == 0, "{} handshakes failed", run.failed);
    Ok(())
}

/// Worker RSS per in-flight session at `sessions` tarpitted sessions
/// (`mxscope serve` + `mxscope-worker work --concurrency sessions`).
pub async fn rss(sessions: usize) -> anyhow::Result<()> {
    let bench = Bench::new("rss", sessions)?;
    let lab = bench
        .servers(
            sessions,
            Population {
                tarpit_permille: 1000,
                refuse_permille: 0,
            },
        )
        .await?;
    let data = bench.dir.join("data");
    let coordinator = CoordinatorProcess::start(&data, "120s")?;
    let worker = WorkerProcess::start_with(
        &coordinator.url,
        "V",
        "127.0.0.1".parse()?,
        "rss-worker",
        &bench.dir,
        &["--concurrency".into(), sessions.to_string().into()],
    )?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = client::rss_of(worker.pid()).context("reading the worker's RSS")?;
    let list = bench.list("domains.txt", 0..sessions)?;
    let status = Command::new(bin("mxscope"))
        .arg("submit")
        .arg(&list)
        .args([
            "--vantage",
            "V",
            "--allow-private",
            "--coordinator",
            &coordinator.url,
        ])
        .args(["--resolver", &bench.dns.addr.to_string()])
        .args(["--port", &PERF_SMTP_PORT.to_string()])
        .args(["--timeout-greeting", "120s", "--timeout-session", "200s"])
        .args(["--network-rate", "0", "--vantage-rate", "0"])
        .args(["--retry-attempts", "1"])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "mxscope submit failed: {status}");
    let started = Instant::now();
    let mut best = (0usize, idle);
    while started.elapsed() < Duration::from_secs(100) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let open = lab.open();
        let rss = client::rss_of(worker.pid()).unwrap_or(0);
        if open >= best.0 {
            best = (open, rss);
        }
        if open >= sessions && started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let (open, rss) = best;
    let per = (rss.saturating_sub(idle)) as f64 / open.max(1) as f64;
    println!("mxscope-perf-lab rss: {sessions} tarpitted targets, mxscope-worker work --concurrency {sessions}");
    println!(
        "  worker RSS idle (registered, before the submit)  {:>8.1} MiB",
        idle as f64 / 1048576.0
    );
    println!(
        "  worker RSS at {open} sessions in flight        {:>8.1} MiB",
        rss as f64 / 1048576.0
    );
    println!(
        "  per in-flight session                            {:>8.1} KiB (target <= 64 KiB)",
        per / 1024.0
    );
    drop(worker);
    drop(coordinator);
    lab.stop().await;
    Ok(())
}

/// MX + A + AAAA lookups of `domains` domains through the worker's
/// resolver, per second and per CPU-second, beside a raw UDP query loop.
pub async fn dns(domains: usize, concurrency: usize) -> anyhow::Result<()> {
    use mxscope_worker::dns::{DnsConfig, MxResolver};
    let bench = Bench::new("dns", domains)?;
    let resolver = MxResolver::new(&DnsConfig {
        resolvers: vec![bench.dns.addr],
        ..DnsConfig::default()
    })?;
    let cpu0 = cpu_seconds(false);
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    let mut ok = 0usize;
    for i in 0..domains {
        if running.len() >= concurrency {
            if let Some(Ok(true)) = running.join_next().await {
                ok += 1;
            }
        }
        let resolver = resolver.clone();
        running.spawn(async move {
            let result = resolver.resolve(&perf::domain(i)).await;
            result.mx.iter().any(|mx| !mx.addresses.is_empty())
        });
    }
    while let Some(done) = running.join_next().await {
        if matches!(done, Ok(true)) {
            ok += 1;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(false) - cpu0;
    let lookups = 3 * domains;
    let queries: Vec<(String, u16)> = (0..domains)
        .flat_map(|i| {
            let mx = format!("mx{i}.{}", perf::PERF_ZONE);
            [(perf::domain(i), 15), (mx.clone(), 1), (mx, 28)]
        })
        .collect();
    let cpu1 = cpu_seconds(false);
    let (answered, raw_wall) = client::raw_dns(bench.dns.addr, &queries, concurrency).await?;
    let raw_cpu = cpu_seconds(false) - cpu1;
    let raw_wall = raw_wall.as_secs_f64();
    println!("mxscope-perf-lab dns: {domains} domains (MX, then A and AAAA of the exchange), {concurrency} at once, Unbound on {}", bench.dns.addr);
    println!("  worker resolver           {lookups} lookups ({ok} domains with an address) in {wall:.2} s: {:.0} lookups/s, {:.0} per CPU-second ({cpu:.2} s CPU)", lookups as f64 / wall, lookups as f64 / cpu.max(1e-9));
    println!("  raw UDP query loop         {answered} answers in {raw_wall:.2} s: {:.0} lookups/s, {:.0} per CPU-second ({raw_cpu:.2} s CPU)", answered as f64 / raw_wall, answered as f64 / raw_cpu.max(1e-9));
    Ok(())
}

/// The seed's serial loop (resolve, then `openssl s_client -starttls smtp`
/// per MX) on `sample` MX spread over a lab of `domains`, extrapolated,
/// beside `mxscope scan` of the whole lab at concurrency `concurrency`.
pub async fn openssl(domains: usize, sample: usize, concurrency: usize) -> anyhow::Result<()> {
    use mxscope_worker::dns::{DnsConfig, MxResolver};
    let bench = Bench::new("openssl", domains)?;
    let lab = bench.servers(domains, Population::default()).await?;
    let resolver = MxResolver::new(&DnsConfig {
        resolvers: vec![bench.dns.addr],
        ..DnsConfig::default()
    })?;
    let started = Instant::now();
    let mut ok = 0;
    for k in 0..sample {
        let i = k * domains / sample;
        let result = resolver.resolve(&perf::domain(i)).await;
        for mx in &result.mx {
            for ip in &mx.addresses {
                let status = Command::new("openssl")
                    .args(["s_client", "-starttls", "smtp", "-connect"])
                    .arg(format!("{ip}:{PERF_SMTP_PORT}"))
                    .args(["-servername", &mx.exchange])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await?;
                if status.success() {
                    ok += 1;
                }
            }
        }
    }
    let serial = started.elapsed();
    let extrapolated = serial.as_secs_f64() * domains as f64 / sample as f64;
    let list = bench.list("domains.txt", 0..domains)?;
    let (wall, samples) = bench.scan(&list, domains, concurrency, 10, &lab).await?;
    let (min, p10, p50) = spread(&samples);
    println!("mxscope-perf-lab openssl: a lab of {domains} MX (one address each, all fast)");
    println!("  serial openssl s_client loop, {sample} MX ({ok} ok)      {:>8.1} s → {:.0} s for the lab ({:.1} h)", serial.as_secs_f64(), extrapolated, extrapolated / 3600.0);
    println!("  mxscope scan --concurrency {concurrency} (whole lab, no pacing) {:>8.1} s ({:.0} targets/s), {:.0}× faster", wall.as_secs_f64(), domains as f64 / wall.as_secs_f64(), extrapolated / wall.as_secs_f64());
    println!("  sessions in flight while targets remained: min {min} / p10 {p10} / p50 {p50}");
    lab.stop().await;
    Ok(())
}
