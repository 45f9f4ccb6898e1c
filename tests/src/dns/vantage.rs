//! DNS that depends on the vantage, and an on-path TLS interceptor: the lab
//! of the vantage comparison (`mxscope vantages`).
//!
//! Two Knot instances serve one small signed hierarchy from a private root:
//! [`VANTAGE_DNS_A`] the true copy, [`VANTAGE_DNS_B`] a tampered copy (what a
//! captive or hostile resolver on vantage b's path would serve). Both are
//! signed with the same keys (made once with `keymgr`, the KASP database
//! copied before either starts), so one trust anchor validates both and only
//! the tampering shows:
//!
//! | domain | true copy | tampered copy | expected class |
//! |---|---|---|---|
//! | `agree.sig.test` | MX `mx-agree.sig.test` → mx-ecdsa | same | none |
//! | `same.plain.test` | MX `mx-same.plain.test` → mx-tls454 | same | none |
//! | `swap.plain.test` | MX `mx-swap.plain.test` → mx-mismatch | MX `mx-evil.plain.test` → mx-expired | `mx_differs` |
//! | `moved.plain.test` | `mx-moved.plain.test` → mx-smallkey | → `127.0.3.15` (nothing listens) | `address_differs` (outside the /24) |
//! | `gone.plain.test` | MX → mx-nostarttls | the name is gone: NXDOMAIN | `dns_status_differs` |
//! | `strip.test` | zone signed, DS in `test.` | zone served unsigned, DS kept: bogus | `dnssec_differs` |
//! | `tlsa.sig.test` | MX → mx-valid, TLSA `3 1 1` of its key | TLSA `3 1 1` of mx-ecdsa's key | `tlsa_differs` (target) |
//! | `dane.sig.test` | MX → mx-backup, TLSA `3 1 1` of its key | same | `tls_intercepted` (target) |
//!
//! `plain.test` is unsigned in both copies (tampering there is invisible to
//! DNSSEC, as on most of the Internet). The interception is on the path, not
//! in DNS: [`Interceptor`] adds an nftables rule in the test's network
//! namespace that sends TCP from [`VANTAGE_DNS_B_SOURCE`] to mx-backup's
//! port 25 to the lab's self-signed Postfix host instead — a man in the
//! middle that terminates STARTTLS with its own certificate. Traffic from
//! any other source, and every other test, is untouched.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

use crate::certs::LabCerts;
use crate::dns::knot::{
    binary, config_for, leaf_info, make_keys, spawn_knotd, wait_signed, write_zones, zone_text,
};
use crate::plan::{self, Host};
use crate::process::Daemon;

/// The true copy (vantage a's resolver).
pub const VANTAGE_DNS_A: &str = "127.0.0.1:5358";
/// The tampered copy (vantage b's resolver).
pub const VANTAGE_DNS_B: &str = "127.0.0.2:5358";
/// Source address of vantage a in these tests.
pub const VANTAGE_DNS_A_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 11);
/// Source address of vantage b, the one whose path is intercepted.
pub const VANTAGE_DNS_B_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 12);
/// Where b's moved address points: another /24, nothing listens.
pub const MOVED_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 15);
/// The nftables table of the interceptor.
const NFT_TABLE: &str = "mxscope_intercept";

/// The domains of this lab and the hosts behind them.
pub mod cases {
    use crate::plan::{self, Host};

    pub const AGREE: &str = "agree.sig.test";
    pub const AGREE_HOST: Host = plan::MX_ECDSA;
    pub const SAME: &str = "same.plain.test";
    pub const SAME_HOST: Host = plan::MX_TLS454;
    pub const SWAP: &str = "swap.plain.test";
    pub const SWAP_HOST: Host = plan::MX_MISMATCH;
    pub const SWAP_EVIL_HOST: Host = plan::MX_EXPIRED;
    pub const MOVED: &str = "moved.plain.test";
    pub const MOVED_HOST: Host = plan::MX_SMALLKEY;
    pub const GONE: &str = "gone.plain.test";
    pub const GONE_HOST: Host = plan::MX_NOSTARTTLS;
    pub const STRIP: &str = "strip.test";
    pub const STRIP_HOST: Host = plan::MX_LEGACY;
    pub const TLSA: &str = "tlsa.sig.test";
    pub const TLSA_HOST: Host = plan::MX_VALID;
    pub const DANE: &str = "dane.sig.test";
    pub const DANE_HOST: Host = plan::MX_BACKUP;
    /// What b reaches instead of [`DANE_HOST`].
    pub const INTERCEPTOR_HOST: Host = plan::MX_SELFSIGNED;

    /// Every domain, in list order.
    pub const ALL: [&str; 8] = [AGREE, SAME, SWAP, MOVED, GONE, STRIP, TLSA, DANE];
}

const SIGNED: &[&str] = &[".", "test.", "sig.test.", "strip.test."];
const UNSIGNED: &[&str] = &["plain.test."];

/// Which copy of the zones: the true one or the tampered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    True,
    Tampered,
}

/// The two Knot instances.
#[derive(Debug)]
pub struct VantageDns {
    _a: Daemon,
    _b: Daemon,
    trust_anchor: PathBuf,
}

impl VantageDns {
    /// Keys once, both zone sets, both knotd, each waited for.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let a_dir = dir.join("a");
        let b_dir = dir.join("b");
        let a_addr: SocketAddr = VANTAGE_DNS_A.parse().context("VANTAGE_DNS_A")?;
        let b_addr: SocketAddr = VANTAGE_DNS_B.parse().context("VANTAGE_DNS_B")?;
        for d in [&a_dir, &b_dir] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d.join("zones")).context("creating a zones folder")?;
            std::fs::create_dir_all(d.join("run")).context("creating a run folder")?;
        }
        let a_conf = a_dir.join("knot.conf");
        std::fs::write(&a_conf, config_for(&a_dir, a_addr, SIGNED, UNSIGNED))
            .context("writing a's knot.conf")?;
        // b serves strip.test unsigned: its DS in test. makes it bogus.
        let b_signed: Vec<&str> = SIGNED
            .iter()
            .copied()
            .filter(|z| *z != "strip.test.")
            .collect();
        let b_unsigned: Vec<&str> = UNSIGNED.iter().copied().chain(["strip.test."]).collect();
        std::fs::write(
            b_dir.join("knot.conf"),
            config_for(&b_dir, b_addr, &b_signed, &b_unsigned),
        )
        .context("writing b's knot.conf")?;

        let ds = make_keys(&a_conf, &a_dir, SIGNED, &[])?;
        let trust_anchor = a_dir.join("root.key");
        copy_dir(&a_dir.join("kasp"), &b_dir.join("kasp")).context("copying the keys to b")?;

        write_zones(&a_dir, zones(certs, &ds, Version::True)?)?;
        write_zones(&b_dir, zones(certs, &ds, Version::Tampered)?)?;
        let mut a = spawn_knotd(&a_dir, &a_conf)?;
        wait_signed(&mut a, a_addr, SIGNED, &a_dir)?;
        let mut b = spawn_knotd(&b_dir, &b_dir.join("knot.conf"))?;
        wait_signed(&mut b, b_addr, &b_signed, &b_dir)?;
        Ok(Self {
            _a: a,
            _b: b,
            trust_anchor,
        })
    }

    /// The private root's DNSKEY, for the scan's trust anchor.
    pub fn trust_anchor(&self) -> &Path {
        &self.trust_anchor
    }
}

/// Copy a folder tree (the KASP database: LMDB files and key PEMs).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The zone files of one copy (zone with trailing dot → text).
fn zones(
    certs: &LabCerts,
    ds: &std::collections::BTreeMap<&str, String>,
    copy: Version,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    use cases::*;
    let spki = |host: &Host| leaf_info(certs, host).map(|c| c.spki_sha256);
    let tlsa_key = match copy {
        Version::True => spki(&TLSA_HOST)?,
        Version::Tampered => spki(&plan::MX_ECDSA)?,
    };
    let dane_key = spki(&DANE_HOST)?;
    let ds_of = |zone: &str| ds.get(zone).cloned().unwrap_or_default();
    let rr = |owner: &str, rtype: &str, data: &str| format!("{owner}. IN {rtype} {data}");
    let mx = |domain: &str, exchange: &str| rr(domain, "MX", &format!("10 {exchange}."));
    let a = |name: &str, host: &Host| rr(name, "A", &host.ip.to_string());
    let mut out = Vec::new();
    let mut zone = |name: &'static str, records: Vec<String>| {
        out.push((name, zone_text(name, records)));
    };
    zone(
        ".",
        vec![
            rr("test", "NS", "ns.test."),
            rr("ns.test", "A", "127.0.0.1"),
            ds_of("test."),
        ],
    );
    zone(
        "test.",
        vec![
            rr("ns.test", "A", "127.0.0.1"),
            rr("sig.test", "NS", "ns.test."),
            ds_of("sig.test."),
            rr("strip.test", "NS", "ns.test."),
            ds_of("strip.test."),
            rr("plain.test", "NS", "ns.test."),
        ],
    );
    zone(
        "sig.test.",
        vec![
            mx(AGREE, "mx-agree.sig.test"),
            a("mx-agree.sig.test", &AGREE_HOST),
            mx(TLSA, "mx-tlsa.sig.test"),
            a("mx-tlsa.sig.test", &TLSA_HOST),
            rr(
                "_25._tcp.mx-tlsa.sig.test",
                "TLSA",
                &format!("3 1 1 {tlsa_key}"),
            ),
            mx(DANE, "mx-dane.sig.test"),
            a("mx-dane.sig.test", &DANE_HOST),
            rr(
                "_25._tcp.mx-dane.sig.test",
                "TLSA",
                &format!("3 1 1 {dane_key}"),
            ),
        ],
    );
    zone(
        "strip.test.",
        vec![mx(STRIP, "mx.strip.test"), a("mx.strip.test", &STRIP_HOST)],
    );
    let mut plain = vec![
        mx(SAME, "mx-same.plain.test"),
        a("mx-same.plain.test", &SAME_HOST),
    ];
    match copy {
        Version::True => plain.extend([
            mx(SWAP, "mx-swap.plain.test"),
            a("mx-swap.plain.test", &SWAP_HOST),
            mx(MOVED, "mx-moved.plain.test"),
            a("mx-moved.plain.test", &MOVED_HOST),
            mx(GONE, "mx-gone.plain.test"),
            a("mx-gone.plain.test", &GONE_HOST),
        ]),
        Version::Tampered => plain.extend([
            mx(SWAP, "mx-evil.plain.test"),
            a("mx-evil.plain.test", &SWAP_EVIL_HOST),
            mx(MOVED, "mx-moved.plain.test"),
            rr("mx-moved.plain.test", "A", &MOVED_ADDRESS.to_string()),
        ]),
    }
    zone("plain.test.", plain);
    Ok(out)
}

/// The on-path interceptor: an nftables DNAT rule, in this network
/// namespace, from [`VANTAGE_DNS_B_SOURCE`] to the DANE host's port 25,
/// towards [`cases::INTERCEPTOR_HOST`]. Removed on drop.
#[derive(Debug)]
pub struct Interceptor {
    _private: (),
}

impl Interceptor {
    pub fn start() -> anyhow::Result<Self> {
        let _ = nft(&["delete", "table", "ip", NFT_TABLE]);
        let IpAddr::V4(target) = cases::DANE_HOST.ip else {
            bail!("the DANE host is not IPv4");
        };
        let IpAddr::V4(proxy) = cases::INTERCEPTOR_HOST.ip else {
            bail!("the interceptor is not IPv4");
        };
        nft(&["add", "table", "ip", NFT_TABLE])?;
        nft(&[
            "add",
            "chain",
            "ip",
            NFT_TABLE,
            "out",
            "{ type nat hook output priority -100 ; }",
        ])?;
        let port = plan::SMTP_PORT.to_string();
        let to = format!("{proxy}:{port}");
        nft(&[
            "add",
            "rule",
            "ip",
            NFT_TABLE,
            "out",
            "ip",
            "saddr",
            &VANTAGE_DNS_B_SOURCE.to_string(),
            "ip",
            "daddr",
            &target.to_string(),
            "tcp",
            "dport",
            &port,
            "dnat",
            "to",
            &to,
        ])?;
        Ok(Self { _private: () })
    }
}

impl Drop for Interceptor {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "ip", NFT_TABLE]);
    }
}

fn nft(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(binary("nft"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running nft (is the nftables package installed? see tests/lab/install.sh)")?;
    if !out.status.success() {
        bail!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
