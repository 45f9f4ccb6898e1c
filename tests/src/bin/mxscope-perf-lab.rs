//! `mxscope-perf-lab`: the performance lab's benchmarks (not tests). Each
//! prints mxscope's number beside a baseline measured in the same run; see
//! `mxscope_tests::perf::bench` and docs/benchmarks.md.
//!
//! - `tarpit [DOMAINS] [CONCURRENCY] [GREETING_TIMEOUT_S] [SCAN_OPTION…]`
//!   (defaults 5000 5000 15; further arguments go to `mxscope scan`, e.g.
//!   `--network-rate 0 --vantage-rate 0` to measure without pacing):
//!   DOMAINS generated domains, each with its own MX address, every address
//!   accepting and never greeting. Runs `mxscope scan --concurrency C
//!   --timeout-greeting Ts` and prints the wall time, the DNS phase, the
//!   sessions in flight (sampled every 100 ms at the tarpit) and the goal
//!   `1.3 × greeting timeout + DNS phase`.
//! - `throughput [DOMAINS] [GREETING_TIMEOUT_S]` (20000 5): targets/s at
//!   concurrency 1,000 and 10,000, all fast and with 5 % tarpits, beside a
//!   bare STARTTLS client; sessions in flight while targets remain.
//! - `cpu [N]` (2000): worker CPU per STARTTLS probe / a bare rustls
//!   client's per handshake, RSA-2048 and ECDSA P-256.
//! - `rss [SESSIONS]` (10000): worker RSS per in-flight tarpitted session.
//! - `dns [DOMAINS] [IN_FLIGHT]` (100000 256): lookups/s and per CPU-second.
//! - `national [DOMAINS] [HOSTS] [SCAN_OPTION…]` (1000000 300): a generated national
//!   zone on Knot; `dnsperf` of its MX queries beside `mxscope scan` of
//!   the list (times, ratio, CPU, peak RSS, headline against the generator).
//! - `openssl [DOMAINS] [SAMPLE] [CONCURRENCY]` (100000 1000 10000): the
//!   seed's serial `openssl s_client` loop, extrapolated, beside `mxscope
//!   scan` of the whole lab.
//! - `soak [MINUTES] [DOMAINS]` (30 10000): a coordinator and two workers
//!   scanning the lab scan after scan while processes are SIGKILLed, the
//!   data disk (a tmpfs) fills and frees, and an abusive client runs;
//!   records lost and counted twice per scan, RSS per minute.
//! - `up [DOMAINS] [TARPIT_PERMILLE]` (20000 0): start the lab (zone,
//!   servers, domain list) and keep it up until Ctrl-C, printing the
//!   `mxscope scan` command line to run against it, and the sessions open
//!   at the servers every second.
//! - `serve …`, `client …`: the lab's server processes and the bare client
//!   (started by the benchmarks).
//!
//! Run inside a network namespace of your own (fixed loopback addresses):
//! `cargo build --release --workspace --bins && ip netns exec NS
//! target/release/mxscope-perf-lab throughput`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use mxscope_tests::perf::{self, PerfDns, PERF_SMTP_PORT};
use mxscope_tests::perf::{bench, lab, national, soak};
use mxscope_tests::runs::cluster::bin;

const USAGE: &str =
    "usage: mxscope-perf-lab tarpit [DOMAINS] [CONCURRENCY] [GREETING_TIMEOUT_S] [SCAN_OPTION…]
       mxscope-perf-lab throughput [DOMAINS] [GREETING_TIMEOUT_S]
       mxscope-perf-lab cpu [N]
       mxscope-perf-lab rss [SESSIONS]
       mxscope-perf-lab dns [DOMAINS] [IN_FLIGHT]
       mxscope-perf-lab national [DOMAINS] [HOSTS] [SCAN_OPTION…]
       mxscope-perf-lab openssl [DOMAINS] [SAMPLE] [CONCURRENCY]
       mxscope-perf-lab soak [MINUTES] [DOMAINS]
       mxscope-perf-lab up [DOMAINS] [TARPIT_PERMILLE]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default().to_vec();
    // The lab's server processes share two cores with everything else: one
    // thread each.
    let runtime = if command == "serve" {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    let arg = |i: usize, default: usize| -> anyhow::Result<usize> {
        rest.get(i)
            .map_or(Ok(default), |a| a.parse().context(USAGE))
    };
    runtime.block_on(async {
        match command {
            "tarpit" => tarpit(&args).await,
            "throughput" => bench::throughput(arg(0, 20_000)?, arg(1, 5)? as u64).await,
            "cpu" => bench::cpu(arg(0, 2_000)?).await,
            "rss" => bench::rss(arg(0, 10_000)?).await,
            "dns" => bench::dns(arg(0, 100_000)?, arg(1, 256)?).await,
            "national" => {
                let extra = rest.get(2..).unwrap_or_default();
                national::national(arg(0, 1_000_000)?, arg(1, 300)?, extra).await
            }
            "openssl" => bench::openssl(arg(0, 100_000)?, arg(1, 1_000)?, arg(2, 10_000)?).await,
            "soak" => soak::soak(arg(0, 30)? as u64, arg(1, 10_000)?).await,
            "up" => bench::up(arg(0, 20_000)?, arg(1, 0)? as u32).await,
            "serve" => lab::serve_part(&rest).await,
            "client" => bench::client(&rest).await,
            _ => anyhow::bail!(USAGE),
        }
    })
}

async fn tarpit(args: &[String]) -> anyhow::Result<()> {
    let domains: usize = args.get(1).map_or(Ok(5000), |a| a.parse())?;
    let concurrency: usize = args.get(2).map_or(Ok(5000), |a| a.parse())?;
    let greeting_s: u64 = args.get(3).map_or(Ok(15), |a| a.parse())?;
    let budget = mxscope_worker::limits::ensure_open_files(2 * domains + 64)
        .context("reading RLIMIT_NOFILE")?;
    anyhow::ensure!(
        !budget.limited(2 * domains + 64),
        "the open-file limit ({}) cannot hold {domains} listeners and their connections",
        budget.soft
    );

    let dir = std::env::temp_dir().join("mxscope-perf-lab");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let dns = PerfDns::start(&dir.join("unbound"), domains)?;
    let addrs: Vec<_> = (0..domains).map(perf::address).collect();
    let gauge = perf::tarpit(&addrs, PERF_SMTP_PORT).await?;
    let list = dir.join("domains.txt");
    let text: String = (0..domains).map(|i| perf::domain(i) + "\n").collect();
    std::fs::write(&list, text)?;

    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .args(["--data-dir"])
        .arg(dir.join("data"))
        .args(["--resolver", &dns.addr.to_string()])
        .args(["--port", &PERF_SMTP_PORT.to_string()])
        .args(["--allow-private", "--json"])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--timeout-greeting", &format!("{greeting_s}s")])
        .args(["--timeout-session", &format!("{}s", greeting_s * 2)])
        .args(args.iter().skip(4))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("scan.stderr"))?)
        .spawn()
        .context("starting mxscope scan (build with --release first)")?;
    let mut first_session: Option<Duration> = None;
    let mut samples: Vec<usize> = Vec::new();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                let open = gauge.open();
                if open > 0 && first_session.is_none() {
                    first_session = Some(started.elapsed());
                }
                if first_session.is_some() && gauge.accepted() < domains {
                    samples.push(open);
                }
            }
        }
    };
    let wall = started.elapsed();
    anyhow::ensure!(
        status.success(),
        "mxscope scan failed: {status} (see {})",
        dir.join("scan.stderr").display()
    );
    let dns_phase = first_session.unwrap_or_default();
    let goal = Duration::from_secs_f64(1.3 * greeting_s as f64) + dns_phase;
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().sum::<usize>() as f64 / samples.len() as f64
    };
    println!("mxscope-perf-lab tarpit: {domains} domains, one never-greeting MX address each");
    println!(
        "  mxscope scan --concurrency {concurrency} --timeout-greeting {greeting_s}s {}",
        args.iter().skip(4).cloned().collect::<Vec<_>>().join(" ")
    );
    println!("  wall time            {:>8.1} s", wall.as_secs_f64());
    println!(
        "  until first session  {:>8.1} s (DNS phase, pipelined)",
        dns_phase.as_secs_f64()
    );
    println!(
        "  goal 1.3×{greeting_s}s + DNS  {:>8.1} s  → {}",
        goal.as_secs_f64(),
        if wall <= goal { "met" } else { "MISSED" }
    );
    println!(
        "  sessions accepted    {:>8} (peak {} open; mean {:.0} open while targets remained = {:.0} % of --concurrency)",
        gauge.accepted(),
        gauge.peak(),
        mean,
        100.0 * mean / concurrency.min(domains).max(1) as f64
    );
    Ok(())
}
