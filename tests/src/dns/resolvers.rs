//! Real resolvers in front of the signed Knot hierarchy ([`crate::dns::knot`]),
//! each usable as `--resolver`:
//!
//! - [`Flavor::Validating`]: Unbound as a validating recursive resolver
//!   (`validator iterator`) with the lab's private root as its trust anchor,
//!   forwarding every query to Knot: how users really deploy. It answers
//!   `SERVFAIL` to a bogus answer unless the query sets CD. One name,
//!   [`REFUSED_NAME`], is refused by a local zone.
//! - [`Flavor::Stripping`]: Unbound as a plain forwarder (`iterator` only)
//!   whose answers carry no RRSIG and no NSEC, like many home and office
//!   boxes. Neither Unbound 1.17 nor dnsmasq 2.90 can be configured to drop
//!   DNSSEC records (both pass RRSIGs through to a client that sets DO), so
//!   the stripping is upstream: the forwarder asks
//!   [`crate::dns::knot::Knot::start_stripped`], the same zones with the DNSKEY
//!   and DS records but no RRSIG and no NSEC.
//!
//! Both listen on loopback only and send only to their Knot (`forward-zone`
//! for `.`, every other address refused with `do-not-query-address`).

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::process::Daemon;

/// The validating Unbound listens here.
pub const VALIDATING_ADDR: &str = "127.0.0.1:5355";
/// The stripping forwarder listens here.
pub const STRIPPING_ADDR: &str = "127.0.0.1:5356";
/// A validating Unbound a test stops on purpose.
pub const TRANSIENT_ADDR: &str = "127.0.0.1:5359";
/// A name the validating resolver refuses (`local-zone … refuse`).
pub const REFUSED_NAME: &str = "refused.sec.test";
/// Its first answer needs Knot's (a forwarded query): room for a loaded machine.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// Which resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Validating,
    Stripping,
}

/// One Unbound in front of Knot.
#[derive(Debug)]
pub struct LabResolver {
    daemon: Daemon,
    addr: SocketAddr,
    dir: PathBuf,
}

impl LabResolver {
    /// Start `flavor` under `dir`, forwarding to `knot` (the signed Knot for
    /// the validating flavor, the stripped one for the stripping flavor);
    /// `anchor` is the private root's DNSKEY file (used by the validating one).
    pub fn start(
        dir: &Path,
        flavor: Flavor,
        knot: SocketAddr,
        anchor: &Path,
    ) -> anyhow::Result<Self> {
        let addr: SocketAddr = match flavor {
            Flavor::Validating => VALIDATING_ADDR,
            Flavor::Stripping => STRIPPING_ADDR,
        }
        .parse()
        .context("parsing the resolver address")?;
        Self::start_at(dir, flavor, addr, knot, anchor)
    }

    /// [`Self::start`] on another address (a resolver of a test's own).
    pub fn start_at(
        dir: &Path,
        flavor: Flavor,
        addr: SocketAddr,
        knot: SocketAddr,
        anchor: &Path,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let conf_path = dir.join("unbound.conf");
        std::fs::write(&conf_path, config(dir, addr, flavor, knot, anchor))
            .context("writing unbound.conf")?;
        let daemon = crate::dns::spawn_unbound("unbound", dir, &conf_path)?;
        let mut resolver = Self {
            daemon,
            addr,
            dir: dir.to_path_buf(),
        };
        resolver.wait_ready()?;
        Ok(resolver)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SIGKILL: the resolver goes away (its port closes).
    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    /// Poll until an SOA query for `sec.test` is answered NOERROR.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
        let mut id: u16 = 0x7265;
        loop {
            if let Some(status) = self.daemon.exited() {
                bail!("unbound exited with {status}\n{}", self.logs());
            }
            if Instant::now() >= deadline {
                bail!(
                    "unbound did not answer within {START_DEADLINE:?}\n{}",
                    self.logs()
                );
            }
            id = id.wrapping_add(1);
            if socket
                .send_to(&soa_query(id, "sec.test"), self.addr)
                .is_ok()
                && crate::dns::knot::answered_in_round(&socket, id, noerror)
            {
                return Ok(());
            }
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| format!("({e})"))
        };
        format!(
            "--- unbound.stderr ---\n{}\n--- unbound.log ---\n{}",
            read("unbound.stderr"),
            read("unbound.log")
        )
    }
}

/// The configuration of one flavor.
fn config(dir: &Path, addr: SocketAddr, flavor: Flavor, knot: SocketAddr, anchor: &Path) -> String {
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
    so-reuseport: no
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
    prefetch: no
    qname-minimisation: no
    # Knot is on loopback; every other address is refused, so nothing
    # ever leaves the machine.
    do-not-query-localhost: no
    outgoing-interface: 127.0.0.1
    # RFC 6761 and RFC 5737 names are local zones by default: serve them.
    local-zone: "test." nodefault
    local-zone: "2.0.192.in-addr.arpa." nodefault
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    for range in [
        "0.0.0.0/2",
        "64.0.0.0/3",
        "96.0.0.0/4",
        "112.0.0.0/5",
        "120.0.0.0/6",
        "124.0.0.0/7",
        "126.0.0.0/8",
        "128.0.0.0/1",
        "::/0",
    ] {
        let _ = writeln!(conf, "    do-not-query-address: {range}");
    }
    match flavor {
        Flavor::Validating => {
            let _ = writeln!(
                conf,
                r#"    module-config: "validator iterator"
    trust-anchor-file: "{anchor}"
    val-log-level: 2
    ede: yes
    local-zone: "{REFUSED_NAME}." refuse"#,
                anchor = anchor.display(),
            );
        }
        Flavor::Stripping => {
            let _ = writeln!(conf, r#"    module-config: "iterator""#);
        }
    }
    let _ = writeln!(
        conf,
        r#"forward-zone:
    name: "."
    forward-addr: {knot_ip}@{knot_port}
remote-control:
    control-enable: no"#,
        knot_ip = knot.ip(),
        knot_port = knot.port(),
    );
    conf
}

/// A DNS query (RD set, no EDNS) for `name` SOA IN.
fn soa_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 6, 0, 1]);
    q
}

/// A NOERROR response to `id`.
fn noerror(resp: &[u8], id: u16) -> bool {
    let Some(h) = resp.get(..12) else {
        return false;
    };
    u16::from_be_bytes([h[0], h[1]]) == id && h[2] & 0x80 != 0 && h[3] & 0x0f == 0
}
