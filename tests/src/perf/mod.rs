//! The performance lab: a generated zone of up to [`MAX_DOMAINS`] domains,
//! each with its own MX address on `127.3.0.0/16`, `127.4.0.0/16` and
//! `127.5.0.0/16`, served by Debian's Unbound on [`PERF_DNS_ADDR`], and a
//! tarpit that binds every one of those addresses explicitly (port
//! [`PERF_SMTP_PORT`]), accepts and never greets ([`crate::perf::smtp`] is
//! the lab's full SMTP server).
//!
//! Loopback only, like the rest of the lab; run it inside a network
//! namespace of your own (the addresses are fixed).

pub mod bench;
pub mod client;
pub mod depth;
pub mod lab;
pub mod national;
pub mod smtp;
pub mod soak;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::process::Daemon;

/// The performance lab's DNS (apart from the functional lab's 5353).
pub const PERF_DNS_ADDR: &str = "127.0.0.1:5399";
/// The port the performance lab's SMTP servers listen on.
pub const PERF_SMTP_PORT: u16 = 2525;
/// The zone of the generated domains.
pub const PERF_ZONE: &str = "perf.test";
/// Domains per /16 of the address plan (`127.N.0.1` … `127.N.249.250`).
const PER_BLOCK: usize = 250 * 250;
/// Most domains the address plan holds: `127.3/16` to `127.5/16`.
pub const MAX_DOMAINS: usize = 3 * PER_BLOCK;
/// One session seen by the [`recorder`] (or the lab SMTP server).
pub use crate::perf::smtp::Seen;
use crate::perf::smtp::{accept_on, TARPIT_HOLD};

/// Domain `i` of the zone.
pub fn domain(i: usize) -> String {
    format!("d{i}.{PERF_ZONE}")
}

/// The MX address of domain `i` (one address per domain).
pub fn address(i: usize) -> IpAddr {
    let block = (i / PER_BLOCK) as u8;
    let i = i % PER_BLOCK;
    let (hi, lo) = ((i / 250) as u8, (i % 250) as u8 + 1);
    IpAddr::V4(Ipv4Addr::new(127, 3 + block, hi, lo))
}

/// Unbound serving `domains` generated domains: `d<i>` has `MX 10 mx<i>`,
/// and `mx<i>` has A [`address`]`(i)`.
#[derive(Debug)]
pub struct PerfDns {
    _daemon: Daemon,
    pub addr: SocketAddr,
}

impl PerfDns {
    pub fn start(dir: &Path, domains: usize) -> anyhow::Result<Self> {
        Self::start_on(dir, domains, PERF_DNS_ADDR.parse()?)
    }

    /// The same on `addr` (a test beside another one's perf lab).
    pub fn start_on(dir: &Path, domains: usize, addr: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(
            domains <= MAX_DOMAINS,
            "at most {MAX_DOMAINS} domains fit the address plan"
        );
        std::fs::create_dir_all(dir)?;
        let d = dir.display();
        let mut conf = format!(
            r#"server:
    interface: {ip}@{port}
    port: {port}
    interface-automatic: no
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 0.0.0.0/0 refuse
    access-control: 127.0.0.0/8 allow
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    logfile: "{d}/unbound.log"
    use-syslog: no
    verbosity: 1
    do-daemonize: no
    num-threads: 1
    module-config: "iterator"
    do-not-query-localhost: yes
    do-not-query-address: 0.0.0.0/0
    do-not-query-address: ::/0
    outgoing-interface: 127.0.0.1
    local-zone: "." refuse
    local-zone: "{PERF_ZONE}." static
"#,
            ip = addr.ip(),
            port = addr.port(),
        );
        let _ = writeln!(
            conf,
            "    local-data: '{PERF_ZONE}. 300 IN SOA ns.{PERF_ZONE}. h.{PERF_ZONE}. 1 3600 600 86400 60'"
        );
        for i in 0..domains {
            let _ = writeln!(
                conf,
                "    local-data: '{}. 300 IN MX 10 mx{i}.{PERF_ZONE}.'",
                domain(i)
            );
            let _ = writeln!(
                conf,
                "    local-data: 'mx{i}.{PERF_ZONE}. 300 IN A {}'",
                address(i)
            );
        }
        conf.push_str("remote-control:\n    control-enable: no\n");
        let conf_path = dir.join("unbound.conf");
        std::fs::write(&conf_path, conf)?;
        let daemon = crate::dns::spawn_unbound("unbound-perf", dir, &conf_path)?;
        wait_for_zone(addr, PERF_ZONE)?;
        Ok(Self {
            _daemon: daemon,
            addr,
        })
    }
}

/// Wait until the server on `addr` answers `zone`'s SOA (60 s at most: a
/// zone of 100,000 domains takes Unbound a while to load).
pub(crate) fn wait_for_zone(addr: SocketAddr, zone: &str) -> anyhow::Result<()> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    // A query for the zone's SOA (id 0x4d58, RD set).
    let mut query = vec![0x4d, 0x58, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 6, 0, 1]);
    for _ in 0..300 {
        let _ = socket.send_to(&query, addr);
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            if n > 3 && buf[3] & 0x0f == 0 {
                return Ok(());
            }
        }
    }
    anyhow::bail!("no answer for {zone} on {addr} within 60 s")
}

/// Connections a tarpit holds now and at most (the lab server's counters).
pub type Gauge = smtp::Stats;

/// Bind every address of `addrs` on `port` (explicitly, one listener each)
/// and hold every connection without a byte until the client closes it.
pub async fn tarpit(addrs: &[IpAddr], port: u16) -> anyhow::Result<Arc<Gauge>> {
    let gauge = Arc::new(Gauge::default());
    for ip in addrs {
        let target = *ip;
        let gauge = gauge.clone();
        accept_on(target, port, "the tarpit", move |mut stream, peer| {
            gauge.opened(target, peer.ip());
            let gauge = gauge.clone();
            async move {
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(TARPIT_HOLD, async {
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                })
                .await;
                gauge.closed();
            }
        })
        .await?;
    }
    Ok(gauge)
}

/// Bind every address of `addrs` on `port`; answer every session with
/// `421` and close it, recording who came when.
pub async fn recorder(
    addrs: &[IpAddr],
    port: u16,
) -> anyhow::Result<Arc<std::sync::Mutex<Vec<Seen>>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    for ip in addrs {
        let target = *ip;
        let seen = seen.clone();
        accept_on(target, port, "the recorder", move |mut stream, peer| {
            if let Ok(mut seen) = seen.lock() {
                seen.push(Seen {
                    target,
                    client: peer.ip(),
                    at: std::time::Instant::now(),
                });
            }
            async move {
                use tokio::io::AsyncWriteExt as _;
                let _ = stream.write_all(b"421 4.7.0 slow down\r\n").await;
                let _ = stream.shutdown().await;
            }
        })
        .await?;
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_per_domain() {
        assert_eq!(address(0), IpAddr::V4(Ipv4Addr::new(127, 3, 0, 1)));
        assert_eq!(address(249), IpAddr::V4(Ipv4Addr::new(127, 3, 0, 250)));
        assert_eq!(address(250), IpAddr::V4(Ipv4Addr::new(127, 3, 1, 1)));
        assert_eq!(
            address(PER_BLOCK - 1),
            IpAddr::V4(Ipv4Addr::new(127, 3, 249, 250))
        );
        assert_eq!(address(PER_BLOCK), IpAddr::V4(Ipv4Addr::new(127, 4, 0, 1)));
        assert_eq!(
            address(MAX_DOMAINS - 1),
            IpAddr::V4(Ipv4Addr::new(127, 5, 249, 250))
        );
    }
}
