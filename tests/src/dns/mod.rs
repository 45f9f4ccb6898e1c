//! The lab's DNS: Debian's Unbound, in the foreground, serving `lab.test` on
//! [`crate::plan::DNS_ADDR`] from `local-data` lines built from the plan.
//!
//! Nothing ever leaves loopback: every name outside `lab.test` is refused
//! (`local-zone: "." refuse`), and as a second belt the iterator may not
//! query any address at all (`do-not-query-address` for all of IPv4 and
//! IPv6, outgoing interface `127.0.0.1`). The SERVFAIL case is an
//! `auth-zone` whose zone file is empty (no SOA, no fallback), answered
//! locally without a single outgoing query.

pub mod forged;
pub mod knot;
pub mod resolvers;
pub mod spoof;
pub mod vantage;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::plan::{self, domains, Host};
use crate::process::Daemon;

/// DNS cases beyond [`crate::plan::domains`], served only by this Unbound.
pub mod dns_cases {
    /// SERVFAIL: an `auth-zone` that has no data (empty zone file).
    pub const SERVFAIL: &str = "broken.lab.test";
    /// REFUSED: any name outside `lab.test` (`local-zone: "." refuse`).
    pub const REFUSED: &str = "outside.example";
    /// `0 .` next to `10 mx-valid`: null MX mixed with others.
    pub const NULLMX_MIXED: &str = "nullmx-mixed.lab.test";
    /// Two MX with the same preference (`10 mx-ecdsa`, `10 mx-backup`):
    /// ordered by name.
    pub const SAME_PREF: &str = "samepref.lab.test";
    /// MX `10 mx-missing.lab.test`, a name that does not exist.
    pub const MX_NXDOMAIN: &str = "noaddr-nx.lab.test";
    /// The exchange of [`MX_NXDOMAIN`] (absent from the zone).
    pub const MX_MISSING: &str = "mx-missing.lab.test";
    /// The exchange of [`crate::plan::domains::MX_NOADDR`]: exists (TXT), no A/AAAA.
    pub const MX_NONE: &str = "mx-none.lab.test";
    /// The CNAME exchange of [`crate::plan::domains::MX_CNAME`] (→ mx-valid).
    pub const MX_ALIAS: &str = "mx-alias.lab.test";
    /// MX `10 mx-dual.lab.test`, which has A `127.0.1.10` and AAAA `::1`.
    pub const DUAL: &str = "dual.lab.test";
    pub const MX_DUAL: &str = "mx-dual.lab.test";
}

/// Every host of the plan (A for IPv4 hosts, AAAA for `mx-v6`); each also
/// has a domain [`domains::for_host`] with `10 <host>` as its MX.
pub const HOSTS: &[Host] = &[
    plan::MX_VALID,
    plan::MX_ECDSA,
    plan::MX_SELFSIGNED,
    plan::MX_EXPIRED,
    plan::MX_MISMATCH,
    plan::MX_SMALLKEY,
    plan::MX_LEGACY,
    plan::MX_NOSTARTTLS,
    plan::MX_DISCARD,
    plan::MX_REFUSE,
    plan::MX_TLS454,
    plan::MX_BACKUP,
    plan::MX_V6,
    plan::MX_EXIM,
    plan::MX_OPENSMTPD,
    plan::MX_HARAKA,
    plan::MX_SENDMAIL,
    plan::MX_CLOSED,
    plan::MX_SILENT,
    plan::MX_ENDLESS,
    plan::MX_LONGLINE,
    plan::MX_TRICKLE,
    plan::MX_INJECT,
    plan::MX_BADUTF8,
    plan::MX_SSL3,
    plan::MX_COUNT,
    plan::MX_COUNT_ALIAS,
    plan::MX_TOGGLE,
    plan::MX_TLS10_RSA,
    plan::MX_TLS12_RSA,
    plan::MX_TLS12_CBC,
    plan::MX_DHE,
    plan::MX_SNI,
    plan::MX_SNI_ALIAS,
    plan::MX_WEAK,
    plan::MX_PREFER,
    plan::MX_DH1024,
    plan::MX_AEAD,
    plan::MX_SHA1,
    plan::MX_WEAKTLS,
    plan::MX_VULN,
];

const TTL: u32 = 300;

/// Start `unbound -d -c conf` in `dir` (stderr to `dir/unbound.stderr`): the
/// one way the lab starts an Unbound, whatever its configuration.
pub(crate) fn spawn_unbound(name: &str, dir: &Path, conf: &Path) -> anyhow::Result<Daemon> {
    let binary = ["/usr/sbin/unbound", "/usr/local/sbin/unbound"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("unbound");
    let stderr = File::create(dir.join("unbound.stderr")).context("creating unbound.stderr")?;
    let mut cmd = Command::new(binary);
    cmd.arg("-d")
        .arg("-c")
        .arg(conf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    Daemon::spawn(name, cmd)
        .with_context(|| format!("starting {binary} (is the unbound package installed?)"))
}
/// How long Unbound may take to answer its first query.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The zone's records, one zone-file line each (`name TTL IN TYPE data`).
pub fn zone_records() -> Vec<String> {
    let zone = plan::ZONE;
    let mut records = BTreeSet::new();
    let mut add = |name: &str, rtype: &str, data: &str| {
        records.insert(format!("{name}. {TTL} IN {rtype} {data}"));
    };
    let mx = |pref: u16, host: &str| format!("{pref} {host}.");

    add(
        zone,
        "SOA",
        &format!("ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60"),
    );
    add(zone, "NS", &format!("ns.{zone}."));
    add(&format!("ns.{zone}"), "A", "127.0.0.1");

    for host in HOSTS {
        match host.ip {
            IpAddr::V4(ip) => add(host.name, "A", &ip.to_string()),
            IpAddr::V6(ip) => add(host.name, "AAAA", &ip.to_string()),
        }
        add(&domains::for_host(host), "MX", &mx(10, host.name));
    }

    let valid = plan::MX_VALID.name;
    add(domains::SINGLE, "MX", &mx(10, valid));
    add(domains::MULTI, "MX", &mx(10, valid));
    add(domains::MULTI, "MX", &mx(20, plan::MX_BACKUP.name));
    add(domains::MULTI, "MX", &mx(30, plan::MX_ECDSA.name));
    add(domains::SHARED_A, "MX", &mx(10, valid));
    add(domains::SHARED_B, "MX", &mx(10, valid));
    add(domains::NULLMX, "MX", "0 .");
    add(domains::IMPLICIT, "A", "127.0.1.10");
    add(domains::NODATA, "TXT", "\"no mail here\"");
    add(domains::MX_NOADDR, "MX", &mx(10, dns_cases::MX_NONE));
    add(dns_cases::MX_NONE, "TXT", "\"no address here\"");
    add(domains::MX_CNAME, "MX", &mx(10, dns_cases::MX_ALIAS));
    add(dns_cases::MX_ALIAS, "CNAME", &format!("{valid}."));
    add(domains::IDN_ASCII, "MX", &mx(10, valid));
    add(domains::V6, "MX", &mx(10, plan::MX_V6.name));
    add(domains::SNI_BOTH, "MX", &mx(10, plan::MX_SNI.name));
    add(domains::SNI_BOTH, "MX", &mx(20, plan::MX_SNI_ALIAS.name));

    add(dns_cases::NULLMX_MIXED, "MX", "0 .");
    add(dns_cases::NULLMX_MIXED, "MX", &mx(10, valid));
    add(dns_cases::SAME_PREF, "MX", &mx(10, plan::MX_ECDSA.name));
    add(dns_cases::SAME_PREF, "MX", &mx(10, plan::MX_BACKUP.name));
    add(dns_cases::MX_NXDOMAIN, "MX", &mx(10, dns_cases::MX_MISSING));
    add(dns_cases::DUAL, "MX", &mx(10, dns_cases::MX_DUAL));
    add(dns_cases::MX_DUAL, "A", "127.0.1.10");
    add(dns_cases::MX_DUAL, "AAAA", "::1");
    add(domains::COUNTED[0], "MX", &mx(10, plan::MX_COUNT.name));
    add(domains::COUNTED[1], "MX", &mx(10, plan::MX_COUNT.name));
    add(
        domains::COUNTED[2],
        "MX",
        &mx(10, plan::MX_COUNT_ALIAS.name),
    );
    // Served for every name below it (a `redirect` local zone).
    add(domains::GENERATED_ZONE, "MX", &mx(10, valid));
    // MTA-STS and TLS-RPT cases (policy hosts served by the lab's nginx).
    for (name, rtype, data) in crate::nginx::policy_records() {
        add(&name, &rtype, &data);
    }

    records.into_iter().collect()
}

/// Unbound's configuration for the lab, everything under `dir`.
fn config(dir: &Path, addr: SocketAddr) -> String {
    let d = dir.display();
    let mut conf = String::new();
    let _ = writeln!(
        conf,
        r#"server:
    interface: {ip}@{port}
    port: {port}
    interface-automatic: no
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    # Lets a second test process serve the same zone on the same port.
    so-reuseport: no
    access-control: 0.0.0.0/0 refuse
    access-control: 127.0.0.0/8 allow
    access-control: ::1 allow
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    logfile: "{d}/unbound.log"
    use-syslog: no
    log-queries: no
    verbosity: 1
    do-daemonize: no
    num-threads: 1
    module-config: "iterator"
    # Nothing ever leaves loopback: the iterator may query no address,
    # and could only send from 127.0.0.1 anyway.
    do-not-query-localhost: yes
    do-not-query-address: 0.0.0.0/0
    do-not-query-address: ::/0
    outgoing-interface: 127.0.0.1
    prefetch: no
    local-zone: "." refuse
    local-zone: "{zone}." static
    local-zone: "{generated}." redirect
    local-zone: "{servfail}." transparent"#,
        generated = domains::GENERATED_ZONE,
        ip = addr.ip(),
        port = addr.port(),
        zone = plan::ZONE,
        servfail = dns_cases::SERVFAIL,
    );
    for record in zone_records() {
        let _ = writeln!(conf, "    local-data: '{record}'");
    }
    let _ = writeln!(
        conf,
        r#"auth-zone:
    name: "{servfail}."
    zonefile: "{d}/broken.zone"
    for-downstream: yes
    for-upstream: no
    fallback-enabled: no
remote-control:
    control-enable: no"#,
        servfail = dns_cases::SERVFAIL,
    );
    conf
}

/// Unbound, authoritative for `lab.test`, on [`crate::plan::DNS_ADDR`].
#[derive(Debug)]
pub struct Unbound {
    daemon: Daemon,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Unbound {
    /// Write the zone and config under `dir`, start Unbound, wait until it answers.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let addr: SocketAddr = plan::DNS_ADDR.parse().context("parsing plan::DNS_ADDR")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("broken.zone"), "").context("writing the empty zone file")?;
        let conf_path = dir.join("unbound.conf");
        std::fs::write(&conf_path, config(dir, addr)).context("writing unbound.conf")?;

        let daemon = spawn_unbound("unbound", dir, &conf_path)?;
        let mut unbound = Self {
            daemon,
            addr,
            dir: dir.to_path_buf(),
        };
        unbound.wait_ready()?;
        Ok(unbound)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Unbound's log file (errors at start go to `unbound.stderr` beside it).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("unbound.log")
    }

    /// Poll with an SOA query for the zone until Unbound answers NOERROR.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        const ROUND: Duration = Duration::from_millis(200);
        let deadline = Instant::now() + START_DEADLINE;
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
        let mut id: u16 = 0x4d58;
        let mut last = String::from("no answer");
        loop {
            if let Some(status) = self.daemon.exited() {
                bail!("unbound exited with {status}\n{}", self.logs());
            }
            if Instant::now() >= deadline {
                bail!(
                    "unbound did not answer within {START_DEADLINE:?} ({last})\n{}",
                    self.logs()
                );
            }
            // One query per round; the round reads (and drains) answers
            // until it ends, so stale answers never speed the loop up.
            let round_end = Instant::now() + ROUND;
            id = id.wrapping_add(1);
            match socket.send_to(&soa_query(id, plan::ZONE), self.addr) {
                Ok(_) => loop {
                    let left = round_end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    socket
                        .set_read_timeout(Some(left))
                        .context("setting a read timeout")?;
                    let mut buf = [0u8; 1500];
                    match socket.recv_from(&mut buf) {
                        Ok((n, _)) => match check_answer(&buf[..n], id) {
                            Ok(()) => return Ok(()),
                            Err(e) => last = e,
                        },
                        Err(e) => {
                            last = format!("recv: {e}");
                            break;
                        }
                    }
                },
                Err(e) => last = format!("send: {e}"),
            }
            std::thread::sleep(round_end.saturating_duration_since(Instant::now()));
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

/// A DNS query (RD set) for `name` SOA IN.
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

/// A response to `id`, NOERROR, with at least one answer.
fn check_answer(resp: &[u8], id: u16) -> Result<(), String> {
    let Some(header) = resp.get(..12) else {
        return Err(format!("short answer ({} bytes)", resp.len()));
    };
    if u16::from_be_bytes([header[0], header[1]]) != id {
        return Err("answer to another query".into());
    }
    if header[2] & 0x80 == 0 {
        return Err("not a response".into());
    }
    let rcode = header[3] & 0x0f;
    if rcode != 0 {
        return Err(format!("response code {rcode}"));
    }
    if u16::from_be_bytes([header[6], header[7]]) == 0 {
        return Err("no answer records".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_has_every_host_and_case() {
        let records = zone_records();
        let has = |line: &str| records.iter().any(|r| r == line);
        assert!(has("mx-valid.lab.test. 300 IN A 127.0.1.10"));
        assert!(has("mx-v6.lab.test. 300 IN AAAA ::1"));
        assert!(has("expired.lab.test. 300 IN MX 10 mx-expired.lab.test."));
        assert!(has("v6.lab.test. 300 IN MX 10 mx-v6.lab.test."));
        assert!(has("nullmx.lab.test. 300 IN MX 0 ."));
        assert!(has("mx-alias.lab.test. 300 IN CNAME mx-valid.lab.test."));
        assert!(!records.iter().any(|r| r.starts_with("nxdomain.lab.test.")));
        // Every address is on loopback.
        for r in &records {
            let fields: Vec<&str> = r.split_whitespace().collect();
            if let [_, _, _, "A" | "AAAA", ip] = fields.as_slice() {
                let ip: IpAddr = ip.parse().expect("an address");
                assert!(ip.is_loopback(), "{r}");
            }
        }
    }

    #[test]
    fn the_config_passes_unbound_checkconf() {
        let checkconf = Path::new("/usr/sbin/unbound-checkconf");
        if !checkconf.exists() {
            eprintln!("unbound-checkconf not installed, skipping");
            return;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("broken.zone"), "").expect("zone file");
        let conf = dir.path().join("unbound.conf");
        let addr = plan::DNS_ADDR.parse().expect("DNS_ADDR");
        std::fs::write(&conf, config(dir.path(), addr)).expect("config");
        let out = Command::new(checkconf)
            .arg(&conf)
            .output()
            .expect("running unbound-checkconf");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
