//! Hostile servers end in their documented outcome within the session
//! deadline, with bounded reads and no panic.

use std::time::{Duration, Instant};

use mxscope_common::{Anomaly, Outcome, Phase, VersionSupport};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::probing::{self, probe_host, TEST_TIMEOUTS};
use mxscope_worker::probe::Prober;

/// Run a probe against `host` and check it ended inside the session deadline.
async fn probe(host: Host) -> mxscope_common::TargetRecord {
    lab::fakes();
    let started = Instant::now();
    let record = probe_host(host, None, false).await;
    let slack = Duration::from_secs(2);
    assert!(
        started.elapsed() < TEST_TIMEOUTS.session + slack,
        "{} took {:?}",
        host.name,
        started.elapsed()
    );
    record
}

#[tokio::test]
async fn closed_port_is_connect_refused() {
    let r = probe(MX_CLOSED).await;
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::ConnectRefused, Phase::Connect)
    );
}

#[tokio::test]
async fn silent_server_is_a_greeting_timeout() {
    let r = probe(MX_SILENT).await;
    assert_eq!((r.outcome, r.phase), (Outcome::Timeout, Phase::Greeting));
    assert!(r.timings_ms.connect.is_some());
}

#[tokio::test]
async fn endless_reply_is_a_protocol_error() {
    let r = probe(MX_ENDLESS).await;
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::ProtocolError, Phase::Greeting)
    );
    assert!(r.detail.unwrap().contains("longer than 256 lines"));
}

#[tokio::test]
async fn megabyte_line_is_a_protocol_error() {
    let r = probe(MX_LONGLINE).await;
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::ProtocolError, Phase::Greeting)
    );
    assert!(r.detail.unwrap().contains("longer than 4096 bytes"));
}

#[tokio::test]
async fn trickling_server_hits_the_phase_timeout() {
    let r = probe(MX_TRICKLE).await;
    assert_eq!((r.outcome, r.phase), (Outcome::Timeout, Phase::Greeting));
    assert!(r.detail.unwrap().contains("no complete reply within 3s"));
}

#[tokio::test]
async fn trickling_server_cannot_outlast_the_session_deadline() {
    lab::fakes();
    let mut config = probing::config(None, false);
    config.timeouts.greeting = Duration::from_secs(60);
    config.timeouts.session = Duration::from_secs(3);
    let tls = probing::lab_tls();
    let started = Instant::now();
    let r = Prober::new(config, tls)
        .probe_target(MX_TRICKLE.ip, vec![MX_TRICKLE.name.into()])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((r.outcome, r.phase), (Outcome::Timeout, Phase::Greeting));
    assert!(r.detail.unwrap().contains("session deadline"));
}

#[tokio::test]
async fn injected_bytes_after_starttls_are_flagged_and_never_reach_tls() {
    let r = probe(MX_INJECT).await;
    assert_eq!(r.outcome, Outcome::StarttlsOk, "{:?}", r.detail);
    assert!(
        r.anomalies.contains(&Anomaly::PreTlsInjection),
        "{:?}",
        r.anomalies
    );
    // The post-TLS EHLO is the server's real one, not the injected reply.
    assert_eq!(r.ehlo_tls, ["PIPELINING"]);
    assert!(!r.ehlo_tls.iter().any(|k| k.contains("INJECTED")));
}

#[tokio::test]
async fn invalid_utf8_is_recorded_not_fatal() {
    let r = probe(MX_BADUTF8).await;
    assert_eq!((r.outcome, r.phase), (Outcome::NoStarttls, Phase::Ehlo));
    assert!(r.anomalies.contains(&Anomaly::NonUtf8Reply));
    assert!(r.greeting.unwrap().text.contains('\u{fffd}'));
}

#[tokio::test]
async fn scripted_sslv3_server_is_seen_as_sslv3_only() {
    lab::fakes();
    let r = probe_host(MX_SSL3, None, true).await;
    // rustls offers TLS 1.2/1.3 only: the scripted server refuses it.
    assert_eq!(
        r.outcome,
        Outcome::StarttlsHandshakeFailed,
        "{:?}",
        r.detail
    );
    assert_eq!(r.protocols.ssl3, VersionSupport::Supported);
    assert_eq!(r.protocols.tls1_0, VersionSupport::NotSupported);
    assert_eq!(r.protocols.tls1_1, VersionSupport::NotSupported);
}
