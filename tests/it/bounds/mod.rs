//! What peers and clients cannot make mxscope do: `hostile` servers end in
//! their documented outcome with bounded reads, `corpus` is the hostile
//! corpus (one table of scripted peers and the record each must give),
//! `cancel` leaves nothing running, `abuse` holds the coordinator's memory
//! budget against an abusive client.
//!
//! Here: bounds fed more than they allow (issue 11, item 5): the resolve phase of
//! `Prober::probe_domains` never has more than `concurrency` domains in
//! flight, however long the list.
//!
//! No real name server can be told to hold queries, so this meets a small
//! holding server on loopback: it answers nothing while queries keep coming,
//! and NXDOMAIN for the oldest waiting name once none came for a moment. So
//! every resolution the prober runs at once is waiting at the server at
//! once; a prober that started more than `concurrency` would show more.

mod abuse;
mod cancel;
mod corpus;
mod hostile;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use mxscope_common::{DnsStatus, DomainName};
use mxscope_worker::config::ProbeConfig;
use mxscope_worker::dns::{DnsConfig, MxResolver};
use mxscope_worker::probe::Prober;
use mxscope_worker::tls::handshake::TlsContext;
use tokio::net::UdpSocket;

/// Answer held queries as described above; `most` is the largest number of
/// distinct names that waited at once.
async fn holding_server(socket: UdpSocket, most: Arc<AtomicUsize>) {
    let mut waiting: Vec<(String, Vec<(Message, SocketAddr)>)> = Vec::new();
    // A name asked again after its answer (a resolver's retransmission) is
    // answered at once and not counted: its resolution is over.
    let mut answered: HashSet<String> = HashSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let got =
            tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await;
        match got {
            Ok(Ok((n, from))) => {
                let Some(bytes) = buf.get(..n) else { continue };
                let Ok(query) = Message::from_vec(bytes) else {
                    continue;
                };
                let name = query
                    .queries
                    .first()
                    .map(|q| q.name().to_ascii().to_ascii_lowercase())
                    .unwrap_or_default();
                if answered.contains(&name) {
                    answer(&socket, query, from).await;
                    continue;
                }
                match waiting.iter_mut().find(|(w, _)| *w == name) {
                    Some((_, queries)) => queries.push((query, from)),
                    None => waiting.push((name, vec![(query, from)])),
                }
                most.fetch_max(waiting.len(), Ordering::SeqCst);
                continue;
            }
            Ok(Err(_)) => return,
            Err(_idle) if waiting.is_empty() => continue,
            Err(_idle) => {}
        }
        let (name, queries) = waiting.remove(0);
        for (query, from) in queries {
            answer(&socket, query, from).await;
        }
        answered.insert(name);
    }
}

/// NXDOMAIN for `query`.
async fn answer(socket: &UdpSocket, query: Message, from: SocketAddr) {
    let mut answer = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    answer.metadata.response_code = ResponseCode::NXDomain;
    answer.metadata.recursion_desired = query.metadata.recursion_desired;
    answer.metadata.recursion_available = true;
    answer.queries = query.queries;
    if let Ok(bytes) = answer.to_vec() {
        let _ = socket.send_to(&bytes, from).await;
    }
}

#[tokio::test]
async fn probe_domains_resolves_at_most_concurrency_domains_at_once() {
    const CONCURRENCY: usize = 4;
    const DOMAINS: usize = 40;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let most = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(holding_server(socket, most.clone()));

    // A long timeout: a held query is answered, never retried or given up.
    let resolver = MxResolver::new(&DnsConfig {
        resolvers: vec![addr],
        timeout: Duration::from_secs(20),
        attempts: 1,
    })
    .expect("resolver");
    let prober = Prober::new(ProbeConfig::default(), TlsContext::new(None).expect("tls"));
    let domains: Vec<DomainName> = (0..DOMAINS)
        .map(|i| DomainName::parse(&format!("d{i}.bounds.test")).expect("domain"))
        .collect();
    let records = prober
        .probe_domains(&resolver, &domains, CONCURRENCY, |_| {})
        .await;
    server.abort();

    assert_eq!(records.len(), DOMAINS);
    for record in &records {
        assert_eq!(record.dns.status, DnsStatus::Nxdomain, "{}", record.domain);
    }
    let most = most.load(Ordering::SeqCst);
    assert!(most <= CONCURRENCY, "{most} domains resolving at once");
    assert!(
        most > 1,
        "the resolutions ran concurrently ({most} at once)"
    );
}
