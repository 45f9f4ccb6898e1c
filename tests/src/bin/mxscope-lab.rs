//! `mxscope-lab`: start the whole lab on loopback and keep it up until Ctrl-C,
//! so `mxscope-worker probe` can be run against it by hand. Needs root.

use mxscope_tests::{lab, plan};

fn main() -> anyhow::Result<()> {
    let certs = lab::certs();
    let dns = lab::dns();
    lab::postfix();
    lab::exim();
    lab::fakes();
    println!("mxscope lab is up (folder {})", lab::dir().display());
    println!("  DNS (Unbound) on {} serving {}", dns.addr(), plan::ZONE);
    println!("  lab CA: {}", certs.ca_pem.display());
    println!("  vantage source addresses: {} and {}", plan::VANTAGE_A, plan::VANTAGE_B);
    println!();
    println!("Try:");
    println!(
        "  cargo run -p mxscope-worker -- probe --resolver {} --ca-file {} {} {} {}",
        dns.addr(),
        certs.ca_pem.display(),
        plan::domains::MULTI,
        plan::domains::for_host(&plan::MX_EXPIRED),
        plan::domains::NULLMX,
    );
    println!();
    println!("Press Ctrl-C to stop the lab.");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(tokio::signal::ctrl_c())?;
    Ok(())
}
