//! `mxscope-lab`: the lab on loopback, by hand. Needs root.
//!
//! - `mxscope-lab` starts the whole lab and keeps it up until Ctrl-C, so
//!   `mxscope-worker probe` can be run against it.
//! - `mxscope-lab bench [SESSIONS]` measures full STARTTLS probes per second
//!   against the lab's Postfix at concurrency 1 and 64 (a benchmark, not a test).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use mxscope_common::Outcome;
use mxscope_tests::probing::prober;
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
        Some(other) => {
            anyhow::bail!("unknown command {other:?}: use no argument, or `bench [SESSIONS]`")
        }
    }
}

fn serve(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let certs = lab::certs();
    let dns = lab::dns();
    lab::postfix();
    lab::exim();
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
