//! Tests of MX planning and address merging (failure classes: `wire`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME};
use hickory_resolver::proto::rr::Record;

use super::answers::*;
use super::*;

fn pairs(list: &[(u16, &str)]) -> Vec<(u16, String)> {
    list.iter().map(|(p, n)| (*p, (*n).to_string())).collect()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("test name")
}

#[test]
fn normalize_lowercases_and_strips_the_dot() {
    assert_eq!(normalize_name("MX1.Example.IT."), "mx1.example.it");
    assert_eq!(normalize_name("mx1.example.it"), "mx1.example.it");
    assert_eq!(normalize_name("."), "");
}

#[test]
fn fqdn_is_absolute_and_lowercase() {
    let n = fqdn("Example.IT").expect("valid");
    assert!(n.is_fqdn());
    assert_eq!(n.to_ascii(), "example.it.");
    assert_eq!(
        fqdn("example.it.").map(|n| n.to_ascii()),
        Some("example.it.".into())
    );
    assert_eq!(fqdn(""), None);
    assert_eq!(fqdn("."), None);
    assert_eq!(fqdn("bücher.example"), None);
    assert_eq!(fqdn("a..b"), None);
}

#[test]
fn exchanges_sort_by_preference_then_name() {
    let plan = plan_mx(pairs(&[
        (20, "mx-b.example"),
        (10, "mx-z.example"),
        (10, "mx-a.example"),
        (20, "mx-b.example"),
        (5, "mx-y.example"),
    ]));
    assert_eq!(
        plan.exchanges,
        pairs(&[
            (5, "mx-y.example"),
            (10, "mx-a.example"),
            (10, "mx-z.example"),
            (20, "mx-b.example"),
        ])
    );
    assert!(!plan.null_mx);
    assert!(plan.anomalies.is_empty());
}

#[test]
fn a_lone_root_is_a_null_mx() {
    let plan = plan_mx(pairs(&[(0, "")]));
    assert!(plan.null_mx);
    assert!(plan.exchanges.is_empty());
    assert!(plan.anomalies.is_empty());
    // Repeated, it is still one null MX.
    assert!(plan_mx(pairs(&[(0, ""), (0, "")])).null_mx);
}

#[test]
fn a_root_among_others_is_an_anomaly() {
    let plan = plan_mx(pairs(&[(0, ""), (10, "mx.example")]));
    assert!(!plan.null_mx);
    assert_eq!(plan.exchanges, pairs(&[(10, "mx.example")]));
    assert_eq!(plan.anomalies, vec![DnsAnomaly::NullMxWithOthers]);
}

#[test]
fn too_many_exchanges_are_truncated() {
    let many = (0..100u16)
        .map(|i| (i, format!("mx{i:03}.example")))
        .collect();
    let plan = plan_mx(many);
    assert!(plan.truncated);
    assert_eq!(plan.exchanges.len(), MAX_EXCHANGES);
    assert_eq!(plan.exchanges[0], (0, "mx000.example".to_string()));
}

fn a(n: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(name(n), 60, RData::A(A(Ipv4Addr::from(ip))))
}

fn aaaa(n: &str, ip: Ipv6Addr) -> Record {
    Record::from_rdata(name(n), 60, RData::AAAA(AAAA(ip)))
}

fn cname(n: &str, target: &str) -> Record {
    Record::from_rdata(name(n), 60, RData::CNAME(CNAME(name(target))))
}

#[test]
fn addresses_are_merged_sorted_and_deduplicated() {
    let n = name("mx.example.");
    let merged = merge_addresses(
        &n,
        [
            Ok(vec![
                a("mx.example.", [192, 0, 2, 9]),
                a("mx.example.", [192, 0, 2, 1]),
                a("mx.example.", [192, 0, 2, 9]),
            ]),
            Ok(vec![aaaa("mx.example.", Ipv6Addr::LOCALHOST)]),
        ],
    );
    assert_eq!(
        merged.addresses,
        vec![
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([192, 0, 2, 9]),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert_eq!(merged.status, DnsStatus::Ok);
    assert_eq!(merged.cname, None);
    assert_eq!(merged.error, None);
}

#[test]
fn addresses_per_exchange_are_capped() {
    let n = name("mx.example.");
    let many: Vec<Record> = (0..=255u8)
        .map(|i| a("mx.example.", [192, 0, 2, i]))
        .collect();
    let merged = merge_addresses(
        &n,
        [Ok(many), Ok(vec![aaaa("mx.example.", Ipv6Addr::LOCALHOST)])],
    );
    assert_eq!(merged.addresses.len(), MAX_ADDRESSES_PER_EXCHANGE);
    assert_eq!(merged.addresses[0], IpAddr::from([192, 0, 2, 0]));
    assert_eq!(merged.truncated_from, Some(257));
    assert_eq!(merged.status, DnsStatus::Ok);
}

#[test]
fn one_family_is_enough() {
    let n = name("mx.example.");
    let merged = merge_addresses(
        &n,
        [
            Err(Failure::new(DnsStatus::Nodata)),
            Ok(vec![aaaa("mx.example.", Ipv6Addr::LOCALHOST)]),
        ],
    );
    assert_eq!(merged.status, DnsStatus::Ok);
    let merged = merge_addresses(
        &n,
        [
            Ok(vec![a("mx.example.", [192, 0, 2, 1])]),
            Err(Failure::new(DnsStatus::Servfail)),
        ],
    );
    assert_eq!(merged.status, DnsStatus::Ok);
}

#[test]
fn negative_answers_and_failures() {
    let n = name("mx.example.");
    let nodata = || Err::<Vec<Record>, _>(Failure::new(DnsStatus::Nodata));
    let nx = || Err(Failure::new(DnsStatus::Nxdomain));
    let servfail = || Err(Failure::new(DnsStatus::Servfail));
    assert_eq!(
        merge_addresses(&n, [nodata(), nodata()]).status,
        DnsStatus::Nodata
    );
    assert_eq!(
        merge_addresses(&n, [nx(), nx()]).status,
        DnsStatus::Nxdomain
    );
    assert_eq!(
        merge_addresses(&n, [nx(), nodata()]).status,
        DnsStatus::Nxdomain
    );
    assert_eq!(
        merge_addresses(&n, [nodata(), servfail()]).status,
        DnsStatus::Servfail
    );
    assert_eq!(
        merge_addresses::<Vec<Record>>(&n, [Ok(vec![]), Ok(vec![])]).status,
        DnsStatus::Nodata
    );
}

#[test]
fn cname_chains_are_followed_to_their_end() {
    let records = vec![
        cname("alias.example.", "alias2.example."),
        cname("Alias2.example.", "real.example."),
        a("real.example.", [192, 0, 2, 1]),
    ];
    assert_eq!(
        cname_target(&name("alias.example."), &records),
        Some(name("real.example."))
    );
    assert_eq!(cname_target(&name("real.example."), &records), None);
    // A loop stops.
    let looped = vec![
        cname("a.example.", "b.example."),
        cname("b.example.", "a.example."),
    ];
    assert!(cname_target(&name("a.example."), &looped).is_some());
}

/// Queries leave in batches (`transport`): a datagram the kernel refuses
/// still fails its query at once, saying why, instead of waiting out the
/// timeout. Port 0 on loopback: `sendmmsg` refuses it (EINVAL), nothing is
/// sent anywhere.
#[tokio::test]
async fn a_query_the_kernel_refuses_fails_at_once_saying_why() {
    let resolver = MxResolver::new(&DnsConfig {
        resolvers: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        timeout: Duration::from_secs(20),
        attempts: 1,
    })
    .expect("a resolver");
    let started = std::time::Instant::now();
    let result = resolver.resolve("refused.example.test").await;
    assert_eq!(result.status, DnsStatus::Error, "{result:?}");
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("sending the query")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "it waited");
}
