//! Shortcuts the end-to-end tests share: a prober and resolver aimed at the lab.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use mxscope_common::TargetRecord;
use mxscope_worker::config::{ProbeConfig, Timeouts};
use mxscope_worker::dns::{DnsConfig, MxResolver};
use mxscope_worker::probe::Prober;
use mxscope_worker::tls::handshake::TlsContext;

use crate::lab;
use crate::plan::Host;

/// Timeouts short enough for hostile servers to end quickly in tests.
pub const TEST_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    greeting: Duration::from_secs(3),
    command: Duration::from_secs(3),
    handshake: Duration::from_secs(3),
    session: Duration::from_secs(6),
};

/// The probe options a lab test uses: lab CA, lab EHLO name, short timeouts.
pub fn config(bind: Option<IpAddr>, legacy: bool) -> ProbeConfig {
    ProbeConfig {
        ehlo_name: "probe.mxscope.lab.test".parse().expect("a valid EHLO name"),
        bind,
        port: crate::plan::SMTP_PORT,
        timeouts: TEST_TIMEOUTS,
        legacy,
        allow_private: true,
        ..ProbeConfig::default()
    }
}

/// A prober trusting the lab CA.
pub fn prober(bind: Option<IpAddr>, legacy: bool) -> Prober {
    let config = config(bind, legacy);
    Prober::new(config, lab_tls())
}

/// TLS trusting only the lab CA.
pub fn lab_tls() -> TlsContext {
    TlsContext::new(Some(&lab::certs().ca_pem)).expect("lab CA loads")
}

/// A resolver that asks only the lab's Unbound (never the system resolver).
pub fn resolver() -> MxResolver {
    let config = DnsConfig {
        resolvers: vec![lab::dns().addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    };
    MxResolver::new(&config).expect("lab resolver")
}

/// Probe one lab host directly by address.
pub async fn probe_host(host: Host, bind: Option<IpAddr>, legacy: bool) -> TargetRecord {
    prober(bind, legacy)
        .probe_target(host.ip, vec![host.name.to_string()])
        .await
}

/// The `mxscope-worker` binary next to the test binary (`cargo build` makes it;
/// `.ci/run` builds every binary before the tests).
pub fn worker_bin() -> PathBuf {
    crate::runs::cluster::bin("mxscope-worker")
}
