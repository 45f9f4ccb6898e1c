//! The DNSSEC lab: Knot DNS, in the foreground, authoritative on
//! [`KNOT_ADDR`] for a private, signed hierarchy from its own root.
//!
//! Knot never queries anyone (it is only authoritative; no forwarding, no
//! remotes) and listens only on loopback. Its world is separate from the
//! Unbound lab (`lab.test` on 5353): only the DNSSEC tests ask it.
//!
//! Keys are made at start with `keymgr` (one ECDSA P-256 CSK per signed
//! zone, policy `manual`), the DS of every child is written into its parent
//! zone file before `knotd` starts, and `knotd` signs every zone when it
//! loads it (`dnssec-signing: on`), with signatures valid around now. The
//! root's DNSKEY is written to [`Knot::trust_anchor`] for the validating
//! resolver. Nothing is committed: all of it lives in the lab folder.
//!
//! Zones (see [`cases`] for what each name tests):
//!
//! | zone | signed | in its parent |
//! |---|---|---|
//! | `.` | yes | the trust anchor |
//! | `test.` | yes | DS |
//! | `sec.test.` | yes | DS |
//! | `lab.test.` (`mx-valid` for DANE-TA with the lab leaf's name, and every record of the Unbound lab's `lab.test`) | yes | DS |
//! | `bogus.test.` | yes | DS whose digest is wrong (bogus) |
//! | `insecure.test.` | no | NS without DS (insecure) |
//! | `_tcp.mx-tlsabogus.sec.test.` | yes | DS whose digest is wrong |
//! | `_tcp.mx-servfail.sec.test.` | configured, no zone file: SERVFAIL | NS without DS |
//! | `2.0.192.in-addr.arpa.` | yes | DS in `.` |
//! | `forged.test.` | by the harness ([`crate::dns::forged`]): expired, future, forged and missing signatures, no NSEC | DS |
//! | `14.2.0.192.in-addr.arpa.` | configured, no zone file: SERVFAIL | NS without DS |

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::certs::LabCerts;
use crate::plan;
use crate::process::Daemon;

/// Knot listens here (UDP and TCP).
pub const KNOT_ADDR: &str = "127.0.0.1:5354";
/// The stripped copy ([`Knot::start_stripped`]) listens here.
pub const STRIPPED_ADDR: &str = "127.0.0.1:5357";
const TTL: u32 = 300;
const START_DEADLINE: Duration = Duration::from_secs(15);

/// The names of the DNSSEC lab and what they test.
pub mod cases {
    /// MX `mx-valid.sec.test` (127.0.1.10, the lab Postfix `mx-valid`),
    /// TLSA `3 1 1` = SHA-256 of its leaf's SPKI (plus an ignored `0 0 1`):
    /// `dane_valid`.
    pub const DANE_OK: &str = "dane-ok.sec.test";
    pub const MX_DANE_OK: &str = "mx-valid.sec.test";
    /// MX `mx-badtlsa.sec.test` (127.0.1.10), TLSA `3 1 1` of another key
    /// (mx-ecdsa's): `dane_mismatch`.
    pub const DANE_BAD: &str = "dane-bad.sec.test";
    pub const MX_DANE_BAD: &str = "mx-badtlsa.sec.test";
    /// MX `mx-valid.lab.test` (signed `lab.test` of this world, 127.0.1.10),
    /// TLSA `2 0 1` = SHA-256 of the lab CA: `dane_valid` (name matches).
    pub const DANE_TA: &str = "dane-ta.sec.test";
    pub const MX_DANE_TA: &str = "mx-valid.lab.test";
    /// MX `mx-ta.sec.test` (127.0.1.10), TLSA `2 0 1` of the lab CA, but the
    /// leaf names `mx-valid.lab.test`: `dane_mismatch` (name check).
    pub const DANE_TA_NAME: &str = "dane-ta-name.sec.test";
    pub const MX_DANE_TA_NAME: &str = "mx-ta.sec.test";
    /// MX `mx-notlsa.sec.test` (127.0.1.21), no TLSA (NXDOMAIN): `no_tlsa`.
    pub const NO_TLSA: &str = "no-tlsa.sec.test";
    pub const MX_NO_TLSA: &str = "mx-notlsa.sec.test";
    /// MX `mx-servfail.sec.test` (127.0.1.10), its `_tcp` zone answers
    /// SERVFAIL: `tlsa_lookup_failed`.
    pub const TLSA_SERVFAIL: &str = "tlsa-servfail.sec.test";
    pub const MX_TLSA_SERVFAIL: &str = "mx-servfail.sec.test";
    /// MX `mx-tlsabogus.sec.test` (127.0.1.10), its `_tcp` zone is bogus
    /// (DS mismatch): `tlsa_lookup_failed`.
    pub const TLSA_BOGUS: &str = "tlsa-bogus.sec.test";
    pub const MX_TLSA_BOGUS: &str = "mx-tlsabogus.sec.test";
    /// Secure MX `mx.insecure.test`, whose address is insecure:
    /// `not_applicable_insecure`.
    pub const MIXED: &str = "mixed.sec.test";
    /// Unsigned zone with MX `mx.insecure.test` (127.0.1.10) and a matching
    /// TLSA `3 1 1` that must be ignored: `insecure`, `not_applicable_insecure`.
    pub const INSECURE: &str = "insecure.test";
    pub const MX_INSECURE: &str = "mx.insecure.test";
    /// Signed zone whose DS does not match: `bogus`.
    /// An MX host of the signed `sec.test` that is a CNAME into the bogus
    /// zone: its addresses are `bogus` (`ds_mismatch`), like the target's.
    pub const MX_ALIAS_BOGUS: &str = "mx-alias.sec.test";
    pub const BOGUS: &str = "bogus.test";
    pub const MX_BOGUS: &str = "mx.bogus.test";
    /// A secure name without MX (NODATA proven by NSEC): `secure`.
    pub const SECURE_NODATA: &str = "mx-valid.sec.test";
    /// A secure name that does not exist (NXDOMAIN proven by NSEC): `secure`.
    pub const SECURE_NXDOMAIN: &str = "nothing-here.sec.test";
    /// Reverse DNS uses TEST-NET-1 (192.0.2.0/24, RFC 5737) data, never
    /// contacted: hickory answers every 127.0.0.0/8 and ::1 reverse lookup
    /// itself with `localhost` (RFC 6761) and never asks a server.
    ///
    /// 192.0.2.10 → `rdns-ok.sec.test` → 192.0.2.10: `fcrdns_ok`.
    pub const PTR_OK: [u8; 4] = [192, 0, 2, 10];
    pub const RDNS_OK: &str = "rdns-ok.sec.test";
    /// 192.0.2.21 → `nowhere.sec.test` (absent) and `rdns-two.sec.test`
    /// (→ 192.0.2.21): `fcrdns_ok` with two names.
    pub const PTR_TWO: [u8; 4] = [192, 0, 2, 21];
    pub const RDNS_TWO: &str = "rdns-two.sec.test";
    pub const RDNS_NOWHERE: &str = "nowhere.sec.test";
    /// 192.0.2.11 → `mx-ecdsa.sec.test`, which does not exist: `ptr_mismatch`.
    /// `ptr-mismatch.sec.test` (A 192.0.2.11, implicit MX) reaches it.
    pub const PTR_DANGLING: [u8; 4] = [192, 0, 2, 11];
    pub const RDNS_DANGLING: &str = "mx-ecdsa.sec.test";
    pub const RDNS_MISMATCH: &str = "ptr-mismatch.sec.test";
    /// 192.0.2.12 → `mx-badtlsa.sec.test`, which is 127.0.1.10: `ptr_mismatch`.
    /// `ptr-elsewhere.sec.test` (A 192.0.2.12, implicit MX) reaches it.
    pub const PTR_ELSEWHERE: [u8; 4] = [192, 0, 2, 12];
    pub const RDNS_ELSEWHERE: &str = "ptr-elsewhere.sec.test";
    /// 192.0.2.13: no PTR: `no_ptr`. `ptr-none.sec.test` (A 192.0.2.13,
    /// implicit MX) reaches it.
    pub const PTR_NONE: [u8; 4] = [192, 0, 2, 13];
    pub const RDNS_NONE: &str = "ptr-none.sec.test";
    /// 192.0.2.14: its reverse zone answers SERVFAIL: `lookup_failed`.
    /// `ptr-fail.sec.test` (A 192.0.2.14, implicit MX) reaches it.
    pub const PTR_SERVFAIL: [u8; 4] = [192, 0, 2, 14];
    pub const RDNS_FAIL: &str = "ptr-fail.sec.test";
}

/// Signed zones, parents before children.
const SIGNED: &[&str] = &[
    ".",
    "test.",
    "sec.test.",
    "lab.test.",
    "bogus.test.",
    "_tcp.mx-tlsabogus.sec.test.",
    "2.0.192.in-addr.arpa.",
];
/// Unsigned zones with data.
const UNSIGNED: &[&str] = &["insecure.test."];
/// Zones configured without a zone file: Knot answers SERVFAIL for them.
const BROKEN: &[&str] = &["_tcp.mx-servfail.sec.test.", "14.2.0.192.in-addr.arpa."];
/// Zones signed by the harness ([`crate::dns::forged`]), served as they are.
const PRESIGNED: &[&str] = &[crate::dns::forged::ZONE];
/// Children whose DS in the parent is deliberately wrong.
const BAD_DS: &[&str] = &["bogus.test.", "_tcp.mx-tlsabogus.sec.test."];

/// Knot DNS serving the signed lab hierarchy.
#[derive(Debug)]
pub struct Knot {
    daemon: Daemon,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Knot {
    /// Generate keys, write the zones (with DS records and TLSA data from
    /// `certs`), start knotd and wait until it answers a signed SOA.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let addr: SocketAddr = KNOT_ADDR.parse().context("parsing KNOT_ADDR")?;
        std::fs::create_dir_all(dir.join("zones")).context("creating the zones folder")?;
        std::fs::create_dir_all(dir.join("run")).context("creating the run folder")?;
        let conf = dir.join("knot.conf");
        std::fs::write(&conf, config(dir, addr)).context("writing knot.conf")?;

        let ds = make_keys(&conf, dir, SIGNED, BAD_DS)?;
        write_zones(dir, zones(certs, &ds)?)?;
        let daemon = spawn_knotd(dir, &conf)?;
        let mut knot = Self {
            daemon,
            addr,
            dir: dir.to_path_buf(),
        };
        knot.wait_ready()?;
        Ok(knot)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The private root's DNSKEY (`. 300 IN DNSKEY 257 3 13 …`): pass it as
    /// `--trust-anchor`.
    pub fn trust_anchor(&self) -> PathBuf {
        self.dir.join("root.key")
    }

    /// Queries knotd has answered so far (all zones, UDP and TCP), from
    /// `knotc stats`; `None` when knotc fails.
    pub fn queries(&self) -> Option<u64> {
        let out = Command::new(binary("knotc"))
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .args(["stats", "mod-stats.request-protocol"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(
            text.lines()
                .filter_map(|l| l.rsplit('=').next()?.trim().parse::<u64>().ok())
                .sum(),
        )
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("knot.log")
    }

    /// A second knotd on [`STRIPPED_ADDR`] serving the same zones with
    /// their DNSSEC records stripped: the DNSKEY and DS records are there,
    /// no RRSIG, no NSEC. What a client sees behind a forwarder that drops
    /// DNSSEC records (the lab's stripping forwarder asks it).
    pub fn start_stripped(&self, dir: &Path) -> anyhow::Result<Self> {
        let addr: SocketAddr = STRIPPED_ADDR.parse().context("parsing STRIPPED_ADDR")?;
        std::fs::create_dir_all(dir.join("zones")).context("creating the zones folder")?;
        std::fs::create_dir_all(dir.join("run")).context("creating the run folder")?;
        let signed_conf = self.dir.join("knot.conf");
        for zone in SIGNED.iter().chain(UNSIGNED) {
            let file = format!("{}.zone", zone.trim_end_matches('.'));
            let mut text = std::fs::read_to_string(self.dir.join("zones").join(&file))
                .with_context(|| format!("reading the zone file of {zone}"))?;
            if SIGNED.contains(zone) {
                let keys = keymgr(&signed_conf, zone, &["dnskey"])?;
                for key in keys.lines().filter_map(|l| l.split_once(" DNSKEY ")) {
                    let _ = writeln!(text, "{} {TTL} IN DNSKEY {}", key.0, key.1);
                }
            }
            std::fs::write(dir.join("zones").join(&file), text)
                .with_context(|| format!("writing the stripped zone {zone}"))?;
        }
        let conf = dir.join("knot.conf");
        std::fs::write(&conf, stripped_config(dir, addr)).context("writing knot.conf")?;
        let stderr = File::create(dir.join("knotd.stderr")).context("creating knotd.stderr")?;
        let mut cmd = Command::new(binary("knotd"));
        cmd.arg("-c")
            .arg(&conf)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let daemon = Daemon::spawn("knotd", cmd).context("starting the stripped knotd")?;
        let mut knot = Self {
            daemon,
            addr,
            dir: dir.to_path_buf(),
        };
        knot.wait_answering()?;
        Ok(knot)
    }

    /// Poll until the root's SOA is answered (signed or not).
    fn wait_answering(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .context("setting a read timeout")?;
        let mut id: u16 = 0x7374;
        loop {
            if let Some(status) = self.daemon.exited() {
                bail!("knotd exited with {status}\n{}", logs(&self.dir));
            }
            if Instant::now() >= deadline {
                bail!(
                    "knotd did not answer within {START_DEADLINE:?}\n{}",
                    logs(&self.dir)
                );
            }
            id = id.wrapping_add(1);
            if socket.send_to(&soa_query(id, "."), self.addr).is_ok()
                && answered_in_round(&socket, id, |resp, id| answer_count(resp, id) >= 1)
            {
                return Ok(());
            }
        }
    }

    /// Poll until every signed zone is loaded (its SOA answered with an RRSIG).
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        wait_signed(&mut self.daemon, self.addr, SIGNED, &self.dir)
    }
}

/// knotd's stderr and log in `dir`, for an error message.
fn logs(dir: &Path) -> String {
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| format!("({e})"));
    format!(
        "--- knotd.stderr ---\n{}\n--- knot.log ---\n{}",
        read("knotd.stderr"),
        read("knot.log")
    )
}

/// One ECDSA P-256 CSK per zone of `signed` (parents first, the root
/// first of all), in the KASP database of `conf`; returns the DS record of
/// every child (digest corrupted for `bad_ds`) and writes the root's
/// DNSKEY to `dir/root.key`.
pub(crate) fn make_keys<'a>(
    conf: &Path,
    dir: &Path,
    signed: &[&'a str],
    bad_ds: &[&str],
) -> anyhow::Result<std::collections::BTreeMap<&'a str, String>> {
    for zone in signed {
        keymgr(
            conf,
            zone,
            &[
                "generate",
                "algorithm=ecdsap256sha256",
                "ksk=yes",
                "zsk=yes",
            ],
        )?;
    }
    let mut ds = std::collections::BTreeMap::new();
    for zone in signed.iter().skip(1) {
        let text = keymgr(conf, zone, &["ds"])?;
        // Digest type 2 (SHA-256) only: `<owner> DS <tag> <alg> 2 <hex>`.
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("2"))
            .with_context(|| format!("keymgr printed no SHA-256 DS for {zone}: {text}"))?;
        let mut fields: Vec<String> = line.split_whitespace().map(String::from).collect();
        if bad_ds.contains(zone) {
            if let Some(digest) = fields.last_mut() {
                *digest = corrupt(digest);
            }
        }
        let [owner, _, rest @ ..] = fields.as_slice() else {
            bail!("unexpected DS line {line:?}");
        };
        ds.insert(*zone, format!("{owner} {TTL} IN DS {}", rest.join(" ")));
    }
    let anchor = keymgr(conf, ".", &["dnskey"])?;
    let anchor: String = anchor
        .lines()
        .filter_map(|l| l.strip_prefix(". DNSKEY "))
        .map(|key| format!(". {TTL} IN DNSKEY {key}\n"))
        .collect();
    if anchor.is_empty() {
        bail!("keymgr printed no root DNSKEY");
    }
    std::fs::write(dir.join("root.key"), anchor).context("writing the trust anchor")?;
    Ok(ds)
}

/// Zone files into `dir/zones` (zone name with its trailing dot → text).
pub(crate) fn write_zones(dir: &Path, zones: Vec<(&str, String)>) -> anyhow::Result<()> {
    for (zone, text) in zones {
        let file = dir
            .join("zones")
            .join(format!("{}.zone", zone.trim_end_matches('.')));
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// A zone file: SOA and NS at the apex, then `records`.
pub(crate) fn zone_text(name: &str, records: Vec<String>) -> String {
    let mut text = format!(
        "$ORIGIN {name}\n$TTL {TTL}\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ IN NS ns.test.\n"
    );
    for r in records {
        text.push_str(&r);
        text.push('\n');
    }
    text
}

/// knotd in the foreground on `conf`, logs in `dir`.
pub(crate) fn spawn_knotd(dir: &Path, conf: &Path) -> anyhow::Result<Daemon> {
    let stderr = File::create(dir.join("knotd.stderr")).context("creating knotd.stderr")?;
    let mut cmd = Command::new(binary("knotd"));
    cmd.arg("-c")
        .arg(conf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    Daemon::spawn("knotd", cmd)
        .context("starting knotd (is the knot package installed? see tests/lab/install.sh)")
}

/// Poll `addr` until every zone of `signed` answers its SOA with an RRSIG
/// (errors carry the logs in `dir`).
pub(crate) fn wait_signed(
    daemon: &mut Daemon,
    addr: SocketAddr,
    signed: &[&str],
    dir: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_DEADLINE;
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .context("setting a read timeout")?;
    let mut pending: Vec<&str> = signed.to_vec();
    let mut id: u16 = 0x6b6e;
    while let Some(zone) = pending.last().copied() {
        if let Some(status) = daemon.exited() {
            bail!("knotd on {addr} exited with {status}\n{}", logs(dir));
        }
        if Instant::now() >= deadline {
            bail!(
                "knotd on {addr} did not serve {zone} signed within {START_DEADLINE:?}\n{}",
                logs(dir)
            );
        }
        id = id.wrapping_add(1);
        if socket.send_to(&soa_query(id, zone), addr).is_ok()
            && answered_in_round(&socket, id, signed_answer)
        {
            pending.pop();
        }
    }
    Ok(())
}

pub(crate) fn binary(name: &str) -> String {
    ["/usr/sbin", "/usr/local/sbin", "/usr/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| name.to_string())
}

fn keymgr(conf: &Path, zone: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(binary("keymgr"))
        .arg("-c")
        .arg(conf)
        .arg(zone)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running keymgr (is the knot package installed?)")?;
    if !out.status.success() {
        bail!(
            "keymgr {zone} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("keymgr printed non-UTF-8")
}

/// A digest of the same length that cannot match (every hex digit rotated).
fn corrupt(hex: &str) -> String {
    hex.chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => char::from_digit((d + 1) % 16, 16).unwrap_or('0'),
            None => c,
        })
        .collect()
}

/// knotd's configuration: loopback only, every zone from `dir/zones`.
fn config(dir: &Path, addr: SocketAddr) -> String {
    let unsigned: Vec<&str> = UNSIGNED
        .iter()
        .chain(BROKEN)
        .chain(PRESIGNED)
        .copied()
        .collect();
    config_for(dir, addr, SIGNED, &unsigned)
}

/// A knotd configuration serving `signed` zones (signed at load) and
/// `unsigned` ones (as their files say; no file: SERVFAIL) from `dir/zones`.
pub(crate) fn config_for(
    dir: &Path,
    addr: SocketAddr,
    signed: &[&str],
    unsigned: &[&str],
) -> String {
    let d = dir.display();
    let mut conf = format!(
        r#"server:
    rundir: "{d}/run"
    listen: {ip}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "{d}/knot.log"
    any: info
database:
    storage: "{d}"
    kasp-db: "{d}/kasp"
    journal-db: "{d}/journal"
    timer-db: "{d}/timer"
mod-stats:
  - id: count
    request-protocol: on
policy:
  - id: lab
    algorithm: ecdsap256sha256
    single-type-signing: on
    manual: on
    nsec3: off
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
template:
  - id: default
    global-module: mod-stats/count
    storage: "{d}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
  - id: signed
    storage: "{d}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
    dnssec-signing: on
    dnssec-policy: lab
zone:
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    for zone in signed {
        let _ = writeln!(conf, "  - domain: \"{zone}\"\n    template: signed");
    }
    for zone in unsigned {
        let _ = writeln!(conf, "  - domain: \"{zone}\"");
    }
    conf
}

/// The stripped copy's configuration: every zone unsigned, from `dir/zones`.
fn stripped_config(dir: &Path, addr: SocketAddr) -> String {
    let d = dir.display();
    let mut conf = format!(
        r#"server:
    rundir: "{d}/run"
    listen: {ip}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "{d}/knot.log"
    any: info
database:
    storage: "{d}"
    journal-db: "{d}/journal"
    timer-db: "{d}/timer"
template:
  - id: default
    storage: "{d}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    for zone in SIGNED.iter().chain(UNSIGNED).chain(BROKEN) {
        let _ = writeln!(conf, "  - domain: \"{zone}\"");
    }
    conf
}

/// Every zone file (zone name with its trailing dot → text).
fn zones(
    certs: &LabCerts,
    ds: &std::collections::BTreeMap<&str, String>,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    use cases::*;
    let valid = leaf_info(certs, &plan::MX_VALID)?;
    let ecdsa = leaf_info(certs, &plan::MX_ECDSA)?;
    let ca = mxscope_worker::tls::cert::analyse(certs.ca_der.as_ref()).sha256;
    let ok_ip = ip(plan::MX_VALID.ip);
    let backup_ip = ip(plan::MX_BACKUP.ip);
    let ds_of = |zone: &str| ds.get(zone).cloned().unwrap_or_default();
    let forged = crate::dns::forged::forge()?;

    let mut out = Vec::new();
    let mut zone = |name: &'static str, records: Vec<String>| {
        out.push((name, zone_text(name, records)));
    };
    let rr = |owner: &str, rtype: &str, data: &str| format!("{owner}. IN {rtype} {data}");
    let tlsa = |mx: &str, data: &str| rr(&format!("_25._tcp.{mx}"), "TLSA", data);

    zone(
        ".",
        vec![
            rr("test", "NS", "ns.test."),
            rr("ns.test", "A", "127.0.0.1"),
            ds_of("test."),
            rr("2.0.192.in-addr.arpa", "NS", "ns.test."),
            ds_of("2.0.192.in-addr.arpa."),
        ],
    );
    zone(
        "test.",
        vec![
            rr("ns.test", "A", "127.0.0.1"),
            rr("sec.test", "NS", "ns.test."),
            ds_of("sec.test."),
            rr("lab.test", "NS", "ns.test."),
            ds_of("lab.test."),
            rr("bogus.test", "NS", "ns.test."),
            ds_of("bogus.test."),
            rr(INSECURE, "NS", "ns.test."),
            rr("forged.test", "NS", "ns.test."),
            forged.ds_line.clone(),
        ],
    );
    zone(
        "sec.test.",
        vec![
            rr(DANE_OK, "MX", &format!("10 {MX_DANE_OK}.")),
            rr(MX_DANE_OK, "A", &ok_ip),
            tlsa(MX_DANE_OK, &format!("3 1 1 {}", valid.spki_sha256)),
            tlsa(MX_DANE_OK, &format!("0 0 1 {ca}")),
            rr(DANE_BAD, "MX", &format!("10 {MX_DANE_BAD}.")),
            rr(MX_DANE_BAD, "A", &ok_ip),
            tlsa(MX_DANE_BAD, &format!("3 1 1 {}", ecdsa.spki_sha256)),
            rr(DANE_TA, "MX", &format!("10 {MX_DANE_TA}.")),
            rr(DANE_TA_NAME, "MX", &format!("10 {MX_DANE_TA_NAME}.")),
            rr(MX_DANE_TA_NAME, "A", &ok_ip),
            tlsa(MX_DANE_TA_NAME, &format!("2 0 1 {ca}")),
            rr(NO_TLSA, "MX", &format!("10 {MX_NO_TLSA}.")),
            rr(MX_NO_TLSA, "A", &backup_ip),
            rr(TLSA_SERVFAIL, "MX", &format!("10 {MX_TLSA_SERVFAIL}.")),
            rr(MX_TLSA_SERVFAIL, "A", &ok_ip),
            rr(&format!("_tcp.{MX_TLSA_SERVFAIL}"), "NS", "ns.test."),
            rr(TLSA_BOGUS, "MX", &format!("10 {MX_TLSA_BOGUS}.")),
            rr(MX_TLSA_BOGUS, "A", &ok_ip),
            rr(&format!("_tcp.{MX_TLSA_BOGUS}"), "NS", "ns.test."),
            ds_of("_tcp.mx-tlsabogus.sec.test."),
            rr(MIXED, "MX", &format!("10 {MX_INSECURE}.")),
            rr(MX_ALIAS_BOGUS, "CNAME", &format!("{MX_BOGUS}.")),
            rr(RDNS_OK, "A", "192.0.2.10"),
            rr(RDNS_TWO, "A", "192.0.2.21"),
            rr(RDNS_MISMATCH, "A", &dotted(PTR_DANGLING)),
            rr(RDNS_ELSEWHERE, "A", &dotted(PTR_ELSEWHERE)),
            rr(RDNS_NONE, "A", &dotted(PTR_NONE)),
            rr(RDNS_FAIL, "A", &dotted(PTR_SERVFAIL)),
        ],
    );
    // lab.test of this world is signed: the DANE-TA case, plus every record
    // of the Unbound lab's lab.test (MX hosts, MTA-STS and TLS-RPT cases),
    // so that those cases also run through the validating resolver.
    let mut lab_test = vec![
        rr(MX_DANE_TA, "A", &ok_ip),
        tlsa(MX_DANE_TA, &format!("2 0 1 {ca}")),
    ];
    let own = format!("{MX_DANE_TA}. ");
    lab_test.extend(crate::dns::zone_records().into_iter().filter(|r| {
        let mut fields = r.split_whitespace();
        let (owner, rtype) = (fields.next(), fields.nth(2));
        owner != Some("lab.test.") && !matches!(rtype, Some("SOA" | "NS")) && !r.starts_with(&own)
    }));
    zone("lab.test.", lab_test);
    zone(
        "bogus.test.",
        vec![
            rr(BOGUS, "MX", &format!("10 {MX_BOGUS}.")),
            rr(MX_BOGUS, "A", &ok_ip),
            tlsa(MX_BOGUS, &format!("3 1 1 {}", valid.spki_sha256)),
        ],
    );
    zone(
        "insecure.test.",
        vec![
            rr(INSECURE, "MX", &format!("10 {MX_INSECURE}.")),
            rr(MX_INSECURE, "A", &ok_ip),
            tlsa(MX_INSECURE, &format!("3 1 1 {}", valid.spki_sha256)),
        ],
    );
    zone(
        "_tcp.mx-tlsabogus.sec.test.",
        vec![tlsa(MX_TLSA_BOGUS, &format!("3 1 1 {}", valid.spki_sha256))],
    );
    let ptr = |ip: [u8; 4], name: &str| {
        rr(
            &format!("{}.{}.{}.{}.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]),
            "PTR",
            &format!("{name}."),
        )
    };
    zone(
        "2.0.192.in-addr.arpa.",
        vec![
            ptr(PTR_OK, RDNS_OK),
            ptr(PTR_TWO, RDNS_NOWHERE),
            ptr(PTR_TWO, RDNS_TWO),
            ptr(PTR_DANGLING, RDNS_DANGLING),
            ptr(PTR_ELSEWHERE, MX_DANE_BAD),
            rr("14.2.0.192.in-addr.arpa", "NS", "ns.test."),
        ],
    );
    out.push((crate::dns::forged::ZONE, forged.zone_text));
    Ok(out)
}

/// `a.b.c.d` of an IPv4 address.
fn dotted(ip: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

/// The analysed leaf of a lab host.
pub(crate) fn leaf_info(
    certs: &LabCerts,
    host: &plan::Host,
) -> anyhow::Result<mxscope_common::CertInfo> {
    let files = certs.leaf(host)?;
    let der = CertificateDer::from_pem_file(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?;
    Ok(mxscope_worker::tls::cert::analyse(der.as_ref()))
}

fn ip(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

/// A DNS query (RD clear, DO set) for `name` SOA IN.
fn soa_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    // Flags 0, one question, one additional (the OPT record).
    q.extend_from_slice(&[0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 6, 0, 1]);
    // OPT: root owner, type 41, payload 1232, DO bit.
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    q
}

/// Read answers for one polling round (300 ms): true when one to `id`
/// passes `ok`. Late answers to earlier queries are read and dropped, so a
/// slow server never leaves the poll one answer behind.
pub(crate) fn answered_in_round(
    socket: &UdpSocket,
    id: u16,
    ok: impl Fn(&[u8], u16) -> bool,
) -> bool {
    let end = Instant::now() + Duration::from_millis(300);
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, _)) if ok(&buf[..n], id) => return true,
            Ok(_) => {}
            Err(_) => {
                std::thread::sleep(end.saturating_duration_since(Instant::now()));
                return false;
            }
        }
    }
}

/// A NOERROR response to `id` with at least two answers (SOA and its RRSIG).
fn signed_answer(resp: &[u8], id: u16) -> bool {
    answer_count(resp, id) >= 2
}

/// The answer count of a NOERROR response to `id` (0 for anything else).
fn answer_count(resp: &[u8], id: u16) -> u16 {
    let Some(h) = resp.get(..12) else {
        return 0;
    };
    if u16::from_be_bytes([h[0], h[1]]) == id && h[2] & 0x80 != 0 && h[3] & 0x0f == 0 {
        u16::from_be_bytes([h[6], h[7]])
    } else {
        0
    }
}
