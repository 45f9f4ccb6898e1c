//! `MxResolver` against the lab's Unbound: every DNS case of the plan.
//! The resolver only ever asks the lab (never the system resolver).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mxscope_common::{DnsAnomaly, DnsResult, DnsStatus, MxEntry};
use mxscope_tests::dns::spoof::{self, SpoofingServer};
use mxscope_tests::dns::{dns_cases, HOSTS};
use mxscope_tests::plan::{self, domains};
use mxscope_worker::dns::{DnsConfig, DroppedAnswers, MxResolver};

fn lab_resolver() -> MxResolver {
    resolver_at(mxscope_tests::lab::dns().addr(), Duration::from_secs(2), 2)
}

fn resolver_at(addr: SocketAddr, timeout: Duration, attempts: usize) -> MxResolver {
    assert!(
        addr.ip().is_loopback(),
        "lab resolvers are on loopback only"
    );
    MxResolver::new(&DnsConfig {
        resolvers: vec![addr],
        timeout,
        attempts,
    })
    .expect("building the resolver")
}

fn entry(preference: u16, exchange: &str, addresses: &[IpAddr]) -> MxEntry {
    MxEntry {
        preference,
        exchange: exchange.to_string(),
        addresses: addresses.to_vec(),
        status: DnsStatus::Ok,
    }
}

fn ok(mx: Vec<MxEntry>) -> DnsResult {
    DnsResult {
        status: DnsStatus::Ok,
        null_mx: false,
        implicit_mx: false,
        mx,
        error: None,
        anomalies: Vec::new(),
    }
}

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn ip(host: plan::Host) -> IpAddr {
    host.ip
}

#[tokio::test]
async fn single_mx() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::SINGLE).await,
        ok(vec![entry(10, plan::MX_VALID.name, &[ip(plan::MX_VALID)])])
    );
}

#[tokio::test]
async fn multi_mx_is_ordered_by_preference() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::MULTI).await,
        ok(vec![
            entry(10, plan::MX_VALID.name, &[ip(plan::MX_VALID)]),
            entry(20, plan::MX_BACKUP.name, &[ip(plan::MX_BACKUP)]),
            entry(30, plan::MX_ECDSA.name, &[ip(plan::MX_ECDSA)]),
        ])
    );
}

#[tokio::test]
async fn equal_preferences_are_ordered_by_name() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(dns_cases::SAME_PREF).await,
        ok(vec![
            entry(10, plan::MX_BACKUP.name, &[ip(plan::MX_BACKUP)]),
            entry(10, plan::MX_ECDSA.name, &[ip(plan::MX_ECDSA)]),
        ])
    );
}

#[tokio::test]
async fn shared_mx() {
    let r = lab_resolver();
    let expected = ok(vec![entry(10, plan::MX_VALID.name, &[ip(plan::MX_VALID)])]);
    assert_eq!(r.resolve(domains::SHARED_A).await, expected);
    assert_eq!(r.resolve(domains::SHARED_B).await, expected);
}

#[tokio::test]
async fn every_host_has_its_domain() {
    let r = lab_resolver();
    for host in HOSTS {
        let domain = domains::for_host(host);
        assert_eq!(
            r.resolve(&domain).await,
            ok(vec![entry(10, host.name, &[host.ip])]),
            "{domain}"
        );
    }
}

#[tokio::test]
async fn null_mx() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::NULLMX).await,
        DnsResult {
            null_mx: true,
            ..ok(Vec::new())
        }
    );
}

#[tokio::test]
async fn null_mx_mixed_with_others() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(dns_cases::NULLMX_MIXED).await,
        DnsResult {
            anomalies: vec![DnsAnomaly::NullMxWithOthers],
            ..ok(vec![entry(10, plan::MX_VALID.name, &[ip(plan::MX_VALID)])])
        }
    );
}

#[tokio::test]
async fn implicit_mx() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::IMPLICIT).await,
        DnsResult {
            implicit_mx: true,
            ..ok(vec![entry(0, domains::IMPLICIT, &[ip(plan::MX_VALID)])])
        }
    );
}

#[tokio::test]
async fn nxdomain() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::NXDOMAIN).await,
        DnsResult::failed(DnsStatus::Nxdomain, "domain does not exist (NXDOMAIN)")
    );
}

#[tokio::test]
async fn nodata() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::NODATA).await,
        DnsResult::failed(DnsStatus::Nodata, "no MX, A or AAAA records")
    );
}

#[tokio::test]
async fn mx_without_address() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::MX_NOADDR).await,
        DnsResult {
            anomalies: vec![DnsAnomaly::MxWithoutAddress {
                exchange: dns_cases::MX_NONE.into()
            }],
            ..ok(vec![MxEntry {
                status: DnsStatus::Nodata,
                ..entry(10, dns_cases::MX_NONE, &[])
            }])
        }
    );
    assert_eq!(
        r.resolve(dns_cases::MX_NXDOMAIN).await,
        DnsResult {
            anomalies: vec![DnsAnomaly::MxWithoutAddress {
                exchange: dns_cases::MX_MISSING.into()
            }],
            ..ok(vec![MxEntry {
                status: DnsStatus::Nxdomain,
                ..entry(10, dns_cases::MX_MISSING, &[])
            }])
        }
    );
}

#[tokio::test]
async fn cname_mx_is_an_anomaly_and_still_resolves() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::MX_CNAME).await,
        DnsResult {
            anomalies: vec![DnsAnomaly::MxIsCname {
                exchange: dns_cases::MX_ALIAS.into(),
                target: plan::MX_VALID.name.into(),
            }],
            ..ok(vec![entry(10, dns_cases::MX_ALIAS, &[ip(plan::MX_VALID)])])
        }
    );
}

#[tokio::test]
async fn idn_a_label() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::IDN_ASCII).await,
        ok(vec![entry(10, plan::MX_VALID.name, &[ip(plan::MX_VALID)])])
    );
    // The resolver takes A-labels only; a U-label is the caller's bug.
    assert_eq!(
        r.resolve(domains::IDN_UNICODE).await.status,
        DnsStatus::Error
    );
}

#[tokio::test]
async fn ipv6_only_mx() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(domains::V6).await,
        ok(vec![entry(10, plan::MX_V6.name, &[V6])])
    );
}

#[tokio::test]
async fn dual_stack_addresses_are_sorted() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(dns_cases::DUAL).await,
        ok(vec![entry(
            10,
            dns_cases::MX_DUAL,
            &[ip(plan::MX_VALID), V6]
        )])
    );
}

#[tokio::test]
async fn names_are_normalized() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve("Single.LAB.test.").await,
        ok(vec![entry(10, plan::MX_VALID.name, &[ip(plan::MX_VALID)])])
    );
}

#[tokio::test]
async fn servfail() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(dns_cases::SERVFAIL).await,
        DnsResult::failed(DnsStatus::Servfail, "server failure (SERVFAIL)")
    );
}

#[tokio::test]
async fn refused() {
    let r = lab_resolver();
    assert_eq!(
        r.resolve(dns_cases::REFUSED).await,
        DnsResult::failed(DnsStatus::Refused, "query refused (REFUSED)")
    );
}

/// A name server that never answers (UDP and TCP on loopback): a timeout,
/// within the bound the configuration implies.
#[tokio::test]
async fn silent_server_times_out() {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("binding udp");
    let addr = udp.local_addr().expect("udp address");
    // Same port over TCP: accept and never answer.
    let tcp = tokio::net::TcpListener::bind(addr).await.ok();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            match &tcp {
                Some(l) => match l.accept().await {
                    Ok((s, _)) => open.push(s),
                    Err(_) => break,
                },
                None => std::future::pending::<()>().await,
            }
        }
    });
    let r = resolver_at(addr, Duration::from_millis(300), 1);
    let started = Instant::now();
    let result = r.resolve(domains::SINGLE).await;
    let elapsed = started.elapsed();
    drop(udp);
    assert_eq!(result, DnsResult::failed(DnsStatus::Timeout, "timed out"));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

/// A name server port where nothing listens (UDP unanswered, TCP refused):
/// reported as a timeout, within the configured timeout.
#[tokio::test]
async fn closed_server_times_out() {
    let addr = {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("binding udp");
        udp.local_addr().expect("udp address")
    };
    let r = resolver_at(addr, Duration::from_millis(300), 1);
    let started = Instant::now();
    let result = r.resolve(domains::SINGLE).await;
    let elapsed = started.elapsed();
    assert_eq!(result, DnsResult::failed(DnsStatus::Timeout, "timed out"));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

/// What the fake name server's two domains truly resolve to.
fn true_answer() -> DnsResult {
    ok(vec![entry(
        10,
        spoof::EXCHANGE,
        &[IpAddr::V4(spoof::EXCHANGE_IP)],
    )])
}

/// Forged answers (wrong ID, from another port, from another address, for
/// another question, not DNS) before the true one: none is taken, each is
/// counted by its reason, and the true answer still counts.
#[tokio::test]
async fn answers_that_match_no_query_are_ignored_and_counted() {
    let server = SpoofingServer::start().await.expect("the fake name server");
    let r = resolver_at(server.addr, Duration::from_secs(2), 1);
    let result = r.resolve(spoof::DOMAIN).await;
    assert_eq!(result, true_answer());
    let count = |reason: &str| spoof::FORGED.iter().filter(|r| **r == reason).count() as u64;
    assert_eq!(
        r.dropped_answers(),
        DroppedAnswers {
            unexpected_id: count("unexpected_id"),
            wrong_server: count("wrong_server"),
            wrong_question: count("wrong_question"),
            malformed: count("malformed"),
        }
    );
    assert_eq!(server.tcp_queries(), 0);
}

/// A truncated UDP answer is asked again over TCP, and the TCP answer counts.
#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let server = SpoofingServer::start().await.expect("the fake name server");
    let r = resolver_at(server.addr, Duration::from_secs(2), 1);
    let result = r.resolve(spoof::TRUNCATED).await;
    assert_eq!(result, true_answer());
    assert_eq!(server.tcp_queries(), 1);
    assert_eq!(r.dropped_answers(), DroppedAnswers::default());
}
