//! A cancelled probe leaves nothing running (issue 11, bounds): the reverse
//! DNS lookup that runs beside a target's session is aborted with the probe,
//! so a fleet that cancels a task leaves no PTR lookup (nor its retries)
//! behind at the resolver.
//!
//! No real name server can be told to stay silent for one test, so the
//! resolver here is a UDP socket of the test's own on loopback that reads
//! queries and never answers. The target is `192.0.2.1` (TEST-NET-1): not
//! public, so the probe skips it without a session (nothing is sent to it)
//! and waits for its PTR lookup only. Loopback targets would not do: the
//! resolver answers `127.in-addr.arpa` itself (RFC 6761), without a query.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::op::Message;
use hickory_resolver::proto::rr::RecordType;
use mxscope_worker::config::{ProbeConfig, SecurityConfig};
use mxscope_worker::probe::Prober;
use mxscope_worker::security::checks::PolicyRoots;
use mxscope_worker::tls::handshake::TlsContext;
use tokio::net::UdpSocket;

/// Longer than the test waits for anything: a lookup that outlived the
/// probe would still be waiting for its first answer when the test looks.
const DNS_TIMEOUT: Duration = Duration::from_secs(60);
/// The test's bound on every wait (a wait that ends sooner passes sooner).
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_dropped_probe_aborts_its_reverse_dns_lookup() {
    let resolver = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let config = ProbeConfig {
        security: Some(SecurityConfig {
            resolvers: vec![resolver.local_addr().expect("resolver addr")],
            dns_timeout: DNS_TIMEOUT,
            ..SecurityConfig::default()
        }),
        ..ProbeConfig::default()
    };
    assert!(
        !config.allow_private,
        "the target is skipped, never contacted"
    );
    let tls = TlsContext::new(None).expect("tls");
    let prober = Prober::with_checks(config, tls, PolicyRoots::Mozilla).expect("prober");
    let checks = prober.security.clone().expect("security checks on");
    let held_before = Arc::strong_count(&checks);

    // The probe runs until the resolver has its PTR query; then it is
    // dropped, as a cancelled task's probe is.
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let query = {
        let probe = prober.probe_target(ip, vec!["mx.cancel.test".into()]);
        tokio::pin!(probe);
        let first_query = async {
            let mut buf = vec![0u8; 4096];
            let (n, _) = resolver.recv_from(&mut buf).await.expect("a query");
            Message::from_vec(buf.get(..n).unwrap_or_default()).expect("a DNS query")
        };
        tokio::select! {
            record = &mut probe => panic!("the probe ended while its resolver was silent: {record:?}"),
            got = tokio::time::timeout(WAIT, first_query) => got.expect("the probe asked DNS"),
        }
    };
    let asked = query
        .queries
        .first()
        .map(|q| (q.name().to_ascii(), q.query_type()));
    assert_eq!(
        asked,
        Some(("1.2.0.192.in-addr.arpa.".to_string(), RecordType::PTR)),
        "the PTR lookup of the target"
    );
    assert!(
        Arc::strong_count(&checks) > held_before,
        "the lookup task holds the checks while it runs (else this test proves nothing)"
    );

    // The probe is gone, and its lookup task with it: the checks it held
    // are released long before the lookup's own timeout.
    let released = tokio::time::timeout(WAIT, async {
        while Arc::strong_count(&checks) > held_before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        released.is_ok(),
        "the PTR lookup task still runs after its probe was dropped"
    );
}
