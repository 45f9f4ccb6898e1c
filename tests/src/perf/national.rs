//! `mxscope-perf-lab national [DOMAINS] [HOSTS] [SCAN_OPTION…]` (issue 22; a benchmark,
//! not a test): a national list resolved against the DNS floor.
//!
//! A generated zone of DOMAINS domains (default 1,000,000) whose MX point
//! at HOSTS hosts (default 300), in the shape of a ccTLD: 1 % NXDOMAIN,
//! 1 % null MX, 1 % implicit MX (the domain's own A, on a host's address),
//! a tenth of the rest with a backup MX. Knot serves it (one UDP worker)
//! and is used directly as the resolver; the perf lab's SMTP servers answer
//! on the hosts' addresses. In one run: `dnsperf` sends the same MX queries
//! to the same Knot, then `mxscope scan` scans the list; it prints both
//! times, their ratio, the CPU and peak RSS of the scan, and whether the
//! headline equals what the generator made. Options after HOSTS are added
//! to the scan's command line (after the benchmark's own, so they win).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use tokio::process::Command;

use crate::perf::client::{cpu_seconds, peak_rss_of};
use crate::perf::lab::LabServers;
use crate::perf::smtp::{PerfCerts, Population};
use crate::perf::{self, PERF_SMTP_PORT};
use crate::runs::cluster::bin;

/// Where Knot answers (the perf lab's Unbound is on 5399).
const KNOT_ADDR: &str = "127.0.0.1:5398";
/// The generated zone.
const ZONE: &str = "nat.test";
/// The headline numbers the generator knows, in the report's JSON names.
const FIELDS: [&str; 8] = [
    "domains",
    "domains_with_mx",
    "domains_implicit_mx",
    "domains_null_mx",
    "domains_dns_error",
    "unique_mx",
    "mx_starttls",
    "domains_covered",
];

/// The zone text, the domain list and the expected headline ([`FIELDS`]).
fn generate(domains: usize, hosts: usize) -> (String, String, [u64; 8]) {
    let mut zone = format!(
        "$ORIGIN {ZONE}.\n$TTL 3600\n@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n"
    );
    for h in 0..hosts {
        let _ = writeln!(zone, "mx{h} IN A {}", perf::address(h));
    }
    let mut list = String::with_capacity(domains * 16);
    let (mut with_mx, mut implicit, mut null, mut error) = (0u64, 0u64, 0u64, 0u64);
    let mut used = vec![false; hosts];
    for i in 0..domains {
        let _ = writeln!(list, "d{i}.{ZONE}");
        // Domains spread over the hosts unevenly, as real populations are.
        let h = (i.wrapping_mul(2_654_435_761) >> 7) % hosts;
        match i % 100 {
            0 => error += 1,
            1 => {
                let _ = writeln!(zone, "d{i} IN MX 0 .");
                null += 1;
            }
            2 => {
                let _ = writeln!(zone, "d{i} IN A {}", perf::address(h));
                implicit += 1;
            }
            k => {
                let _ = writeln!(zone, "d{i} IN MX 10 mx{h}");
                used[h] = true;
                if k % 10 == 3 {
                    let backup = (h + 1) % hosts;
                    let _ = writeln!(zone, "d{i} IN MX 20 mx{backup}");
                    used[backup] = true;
                }
                with_mx += 1;
            }
        }
    }
    // Every host and every implicit MX name serves STARTTLS.
    let unique_mx = used.iter().filter(|u| **u).count() as u64 + implicit;
    let expected = [
        domains as u64,
        with_mx,
        implicit,
        null,
        error,
        unique_mx,
        unique_mx,
        with_mx + implicit,
    ];
    (zone, list, expected)
}

/// knotd serving `zone` on [`KNOT_ADDR`] with one UDP worker.
fn start_knot(dir: &Path, zone: &str) -> anyhow::Result<crate::process::Daemon> {
    let addr: SocketAddr = KNOT_ADDR.parse()?;
    for sub in ["zones", "run"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("zones").join(format!("{ZONE}.zone")), zone)?;
    let conf = dir.join("knot.conf");
    std::fs::write(&conf, crate::dns::knot::config_for(dir, addr, &[], &[ZONE]))?;
    let daemon = crate::dns::knot::spawn_knotd(dir, &conf)?;
    perf::wait_for_zone(addr, ZONE)?;
    Ok(daemon)
}

/// dnsperf sending `queries` (one `NAME MX` per line) to Knot once:
/// (run time in seconds as dnsperf reports it, queries completed, CPU).
async fn dnsperf(queries: &Path) -> anyhow::Result<(f64, u64, f64)> {
    let addr: SocketAddr = KNOT_ADDR.parse()?;
    let cpu0 = cpu_seconds(true);
    let output = Command::new("dnsperf")
        .args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("-d")
        .arg(queries)
        .args(["-q", "500", "-t", "5"])
        .output()
        .await
        .context("running dnsperf (tests/lab/install.sh installs it)")?;
    let cpu = cpu_seconds(true) - cpu0;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "dnsperf failed: {text}");
    let field = |label: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
        line.split_once(':')?
            .1
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let run_time = field("Run time (s)").context("dnsperf printed no run time")?;
    let completed = field("Queries completed").unwrap_or(0.0) as u64;
    Ok((run_time, completed, cpu))
}

/// `mxscope scan` of `list` against Knot, as the issue ran it: (wall, CPU
/// seconds, peak RSS in bytes, the report as JSON).
async fn scan(
    dir: &Path,
    list: &Path,
    extra: &[String],
) -> anyhow::Result<(Duration, f64, u64, Value)> {
    let cpu0 = cpu_seconds(true);
    let started = Instant::now();
    let mut child = Command::new(bin("mxscope"))
        .arg("scan")
        .arg(list)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--resolver", KNOT_ADDR])
        .args(["--port", &PERF_SMTP_PORT.to_string()])
        .args(["--allow-private", "--json"])
        .args(["--concurrency", "1000"])
        .args(["--network-rate", "0", "--vantage-rate", "0"])
        .args(extra)
        .stdout(std::fs::File::create(dir.join("report.json"))?)
        .stderr(std::fs::File::create(dir.join("scan.stderr"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting mxscope scan (build with --release first)")?;
    let pid = child.id().context("the scan's pid")?;
    let mut peak = 0;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                peak = peak.max(peak_rss_of(pid).unwrap_or(0));
            }
        }
    };
    let wall = started.elapsed();
    let cpu = cpu_seconds(true) - cpu0;
    anyhow::ensure!(status.success(), "mxscope scan failed: {status}");
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("report.json"))?)
        .context("reading the scan's JSON report")?;
    Ok((wall, cpu, peak, report))
}

pub async fn national(domains: usize, hosts: usize, extra: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        domains >= 100 && (1..=perf::MAX_DOMAINS).contains(&hosts),
        "national: at least 100 domains, 1 to {} hosts",
        perf::MAX_DOMAINS
    );
    let dir = std::env::temp_dir()
        .join("mxscope-perf-lab")
        .join("national");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let set_up = Instant::now();
    let (zone, list_text, expected) = generate(domains, hosts);
    let list = dir.join("domains.txt");
    std::fs::write(&list, &list_text)?;
    let queries = dir.join("queries.txt");
    let query_text: String = list_text.lines().map(|d| format!("{d} MX\n")).collect();
    std::fs::write(&queries, query_text)?;
    let _knot = start_knot(&dir.join("knot"), &zone)?;
    drop(zone);
    let cert_dir = dir.join("certs");
    PerfCerts::generate()?.write(&cert_dir)?;
    mxscope_worker::limits::ensure_open_files(19_000).context("RLIMIT_NOFILE")?;
    let program = std::env::current_exe()?;
    let lab = LabServers::start(
        &program,
        hosts,
        Population::default(),
        Duration::ZERO,
        &cert_dir,
    )
    .await?;
    println!(
        "mxscope-perf-lab national: {domains} domains onto {hosts} MX hosts (1 % NXDOMAIN, 1 % null MX, 1 % implicit MX), Knot on {KNOT_ADDR} as the resolver (set up in {:.0} s)",
        set_up.elapsed().as_secs_f64()
    );

    let (dnsperf_s, completed, dnsperf_cpu) = dnsperf(&queries).await?;
    println!(
        "  dnsperf       {completed} MX queries in {dnsperf_s:.2} s: {:.0} queries/s ({dnsperf_cpu:.2} s CPU)",
        completed as f64 / dnsperf_s.max(1e-9)
    );
    let (wall, cpu, peak, report) = scan(&dir, &list, extra).await?;
    lab.stop().await;
    let wall_s = wall.as_secs_f64();
    println!(
        "  mxscope scan  {domains} domains in {wall_s:.2} s: {:.0} domains/s ({cpu:.2} s CPU, peak RSS {} MiB)",
        domains as f64 / wall_s.max(1e-9),
        peak >> 20
    );
    println!(
        "  ratio         {:.2}× dnsperf's time",
        wall_s / dnsperf_s.max(1e-9)
    );
    // `scan --json` prints the one vantage's headline.
    let headline = &report;
    let mismatches: Vec<String> = FIELDS
        .iter()
        .zip(expected)
        .filter(|(field, want)| headline[**field].as_u64() != Some(*want))
        .map(|(field, want)| format!("{field} {} (generated {want})", headline[*field]))
        .collect();
    if mismatches.is_empty() {
        println!(
            "  headline      exact: {}",
            FIELDS
                .iter()
                .zip(expected)
                .map(|(f, n)| format!("{f} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    } else {
        println!("  headline      DIFFERS: {}", mismatches.join(", "));
        anyhow::bail!("the scan's headline differs from the generator's")
    }
}
