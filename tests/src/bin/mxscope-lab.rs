//! `mxscope-lab`: the lab on loopback, by hand. Needs root.
//!
//! - `mxscope-lab` starts the whole lab and keeps it up until Ctrl-C, so
//!   `mxscope-worker probe` can be run against it.
//! - `mxscope-lab bench [SESSIONS]` measures full STARTTLS probes per second
//!   against the lab's Postfix at concurrency 1 and 64 (a benchmark, not a test).
//! - `mxscope-lab bench-first-flight [SESSIONS]` compares the client CPU of
//!   a first-flight measurement with a rustls handshake against the same
//!   server (`mx-legacy`, which accepts both), and counts the sessions a
//!   certificate per MX name costs on the lab's shared IPs.
//! - `mxscope-lab bench-tls-depth` compares the sessions and time of
//!   `--tls-depth classes` and `suites` with sslyze's and testssl.sh's full
//!   runs on the same hosts (counted at the server's door).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use mxscope_common::Outcome;
use mxscope_tests::runs::probing::prober;
use mxscope_tests::{lab, plan};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        None => serve(&runtime),
        Some("bench") => {
            let sessions = match args.get(1) {
                Some(n) => n.parse().context("SESSIONS must be a number")?,
                None => 500,
            };
            runtime.block_on(bench(sessions))
        }
        Some("bench-first-flight") => {
            let sessions = match args.get(1) {
                Some(n) => n.parse().context("SESSIONS must be a number")?,
                None => 300,
            };
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(bench_first_flight(sessions))
        }
        Some("bench-tls-depth") => runtime.block_on(mxscope_tests::perf::depth::run()),
        Some(other) => {
            anyhow::bail!(
                "unknown command {other:?}: use no argument, `bench [SESSIONS]`, `bench-first-flight [SESSIONS]` or `bench-tls-depth`"
            )
        }
    }
}

fn serve(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let certs = lab::certs();
    let dns = lab::dns();
    lab::postfix();
    lab::exim();
    lab::opensmtpd();
    lab::haraka();
    lab::sendmail();
    lab::fakes();
    let knot = lab::knot();
    lab::nginx();
    let validating = lab::validating_resolver();
    let stripping = lab::stripping_resolver();
    println!("mxscope lab is up (folder {})", lab::dir().display());
    println!("  DNS (Unbound) on {} serving {}", dns.addr(), plan::ZONE);
    println!("  lab CA: {}", certs.ca_pem.display());
    println!(
        "  signed zones (Knot) on {}, trust anchor {}",
        knot.addr(),
        knot.trust_anchor().display()
    );
    println!(
        "  validating Unbound (private root) on {}, DNSSEC-stripping forwarder on {}",
        validating.addr(),
        stripping.addr()
    );
    println!(
        "  vantage source addresses: {} and {}",
        plan::VANTAGE_A,
        plan::VANTAGE_B
    );
    println!();
    println!("Try:");
    println!(
        "  cargo run -p mxscope-worker -- probe --allow-private --resolver {} --ca-file {} {} {} {}",
        dns.addr(),
        certs.ca_pem.display(),
        plan::domains::MULTI,
        plan::domains::for_host(&plan::MX_EXPIRED),
        plan::domains::NULLMX,
    );
    println!(
        "  cargo run -p mxscope-worker -- probe --allow-private --security --resolver {} \\\n    --trust-anchor {} --ca-file {} dane-ok.sec.test dane-bad.sec.test insecure.test",
        knot.addr(),
        knot.trust_anchor().display(),
        certs.ca_pem.display(),
    );
    println!();
    println!("Press Ctrl-C to stop the lab.");
    runtime.block_on(tokio::signal::ctrl_c())?;
    Ok(())
}

/// `sessions` full probes (connect, EHLO, STARTTLS, TLS 1.3, EHLO, QUIT) of
/// the lab's valid Postfix host at each concurrency.
async fn bench(sessions: usize) -> anyhow::Result<()> {
    lab::postfix();
    let prober = prober(None, false);
    // Warm-up: Postfix forks its smtpd processes on demand.
    prober
        .probe_target(plan::MX_VALID.ip, vec![plan::MX_VALID.name.into()])
        .await;
    println!("concurrency  sessions  seconds  probes/s  ok");
    for concurrency in [1usize, 64] {
        let permits = Arc::new(Semaphore::new(concurrency));
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..sessions {
            let prober = prober.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                prober
                    .probe_target(plan::MX_VALID.ip, vec![plan::MX_VALID.name.into()])
                    .await
                    .outcome
            });
        }
        let mut ok = 0;
        while let Some(outcome) = tasks.join_next().await {
            if outcome? == Outcome::StarttlsOk {
                ok += 1;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{concurrency:>11}  {sessions:>8}  {seconds:>7.2}  {:>8.1}  {ok}",
            sessions as f64 / seconds
        );
    }
    Ok(())
}

/// CPU time of this thread (the runtime is current-thread: all client work
/// runs here; the servers are other processes).
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// A plain session to `host` up to STARTTLS's 220 (lines bounded by the lab).
async fn after_starttls(host: plan::Host) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect((host.ip, plan::SMTP_PORT)).await?;
    let mut reader = BufReader::new(stream);
    async fn reply(r: &mut BufReader<tokio::net::TcpStream>) -> anyhow::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await? == 0 {
                anyhow::bail!("closed");
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(all);
            }
        }
    }
    reply(&mut reader).await?;
    reader
        .get_mut()
        .write_all(b"EHLO bench.lab.test\r\n")
        .await?;
    reply(&mut reader).await?;
    reader.get_mut().write_all(b"STARTTLS\r\n").await?;
    let answer = reply(&mut reader).await?;
    anyhow::ensure!(answer.starts_with("220"), "STARTTLS refused: {answer}");
    Ok(reader.into_inner())
}

async fn bench_first_flight(sessions: usize) -> anyhow::Result<()> {
    use mxscope_worker::tls::first_flight;
    use mxscope_worker::tls::handshake::{TlsContext, Versions};
    use std::time::Duration;
    lab::postfix();
    let host = plan::MX_LEGACY;
    let tls = TlsContext::new(Some(&lab::certs().ca_pem))?;
    let names = [host.name.to_string()];
    let timeout = Duration::from_secs(5);
    // Warm-up: Postfix forks its smtpd processes on demand.
    let _ = first_flight::read(&mut after_starttls(host).await?, Some(host.name), timeout).await;
    let (mut rustls_cpu, mut flight_cpu) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..sessions {
        let stream = after_starttls(host).await?;
        let started = thread_cpu();
        tls.handshake(stream, host.name, &names, Versions::Modern, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("rustls handshake: {}", e.detail))?;
        rustls_cpu += thread_cpu() - started;

        let mut stream = after_starttls(host).await?;
        let started = thread_cpu();
        let flight = first_flight::read(&mut stream, Some(host.name), timeout)
            .await
            .map_err(|e| anyhow::anyhow!("first flight: {}", e.detail))?;
        let _facts = flight.facts(&tls, host.name, &names);
        flight_cpu += thread_cpu() - started;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / sessions as f64;
    println!(
        "client CPU per measurement against {} ({sessions} each)",
        host.name
    );
    println!(
        "  rustls TLS 1.3 handshake + facts: {:>8.1} µs",
        per(rustls_cpu)
    );
    println!(
        "  first flight + offline facts:     {:>8.1} µs",
        per(flight_cpu)
    );
    println!(
        "  ratio first flight / rustls:      {:>8.2}",
        flight_cpu.as_secs_f64() / rustls_cpu.as_secs_f64().max(f64::EPSILON)
    );

    // Sessions a certificate per MX name costs: every lab IP probed with every
    // MX name the lab zone points at it.
    let prober = prober(None, false);
    let mut by_ip: std::collections::BTreeMap<std::net::IpAddr, Vec<String>> = Default::default();
    for host in mxscope_tests::dns::HOSTS {
        if plan::POSTFIX_HOSTS.iter().any(|p| p.ip == host.ip) {
            by_ip
                .entry(host.ip)
                .or_default()
                .push(host.name.to_string());
        }
    }
    let (mut ips, mut names_total, mut extra) = (0, 0, 0);
    for (ip, names) in by_ip {
        ips += 1;
        names_total += names.len();
        let record = prober.probe_target(ip, names).await;
        extra += record
            .names
            .values()
            .filter(|n| {
                matches!(
                    n.check,
                    mxscope_common::NameCheck::OwnSession
                        | mxscope_common::NameCheck::SessionFailed
                )
            })
            .count();
    }
    println!(
        "certificate per MX name: {ips} Postfix IPs, {names_total} MX names, {extra} extra sessions"
    );
    Ok(())
}
