//! The lab's address plan (DESIGN §6): every name, address and port the lab
//! uses, in one place. Everything is on loopback; nothing here may point
//! outside `127.0.0.0/8` or `::1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The lab's DNS zone.
pub const ZONE: &str = "lab.test";
/// Unbound (authoritative for `lab.test` and its reverse zone) listens here.
pub const DNS_ADDR: &str = "127.0.0.1:5353";
/// SMTP port of every lab MX host.
pub const SMTP_PORT: u16 = 25;

/// Source address of vantage A (STARTTLS visible everywhere).
pub const VANTAGE_A: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 1);
/// Source address of vantage B (the discard host strips STARTTLS for it).
pub const VANTAGE_B: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 2);

/// One MX host of the lab: a name in `lab.test` and the address it listens on.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Exchange name (fully qualified, no trailing dot).
    pub name: &'static str,
    pub ip: IpAddr,
}

const fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, d))
}

macro_rules! hosts {
    ($($(#[$m:meta])* $id:ident = $name:literal @ $ip:expr;)*) => {
        $( $(#[$m])* pub const $id: Host = Host { name: $name, ip: $ip }; )*
    };
}

hosts! {
    // --- Postfix (OpenSSL), one master.cf line each ---
    /// Valid chain from the lab CA, RSA-2048.
    MX_VALID = "mx-valid.lab.test" @ v4(10);
    /// ECDSA P-256 leaf from the lab CA.
    MX_ECDSA = "mx-ecdsa.lab.test" @ v4(11);
    /// Self-signed RSA leaf.
    MX_SELFSIGNED = "mx-selfsigned.lab.test" @ v4(12);
    /// Lab-CA leaf whose validity ended yesterday.
    MX_EXPIRED = "mx-expired.lab.test" @ v4(13);
    /// Lab-CA leaf for `other-name.lab.test` only.
    MX_MISMATCH = "mx-mismatch.lab.test" @ v4(14);
    /// Lab-CA leaf with an RSA-1024 key (`@SECLEVEL=0`).
    MX_SMALLKEY = "mx-smallkey.lab.test" @ v4(15);
    /// TLS 1.0 to 1.3 enabled (`@SECLEVEL=0`).
    MX_LEGACY = "mx-legacy.lab.test" @ v4(16);
    /// No STARTTLS at all.
    MX_NOSTARTTLS = "mx-nostarttls.lab.test" @ v4(17);
    /// STARTTLS discarded for VANTAGE_B only.
    MX_DISCARD = "mx-discard.lab.test" @ v4(18);
    /// Refuses every client in its greeting (554).
    MX_REFUSE = "mx-refuse.lab.test" @ v4(19);
    /// Advertises STARTTLS, answers it with 454.
    MX_TLS454 = "mx-tls454.lab.test" @ v4(20);
    /// Valid lab-CA leaf, TLS 1.2 only: second MX of the multi-MX domain.
    MX_BACKUP = "mx-backup.lab.test" @ v4(21);
    /// Reachable only over IPv6 (`::1`), valid lab-CA leaf.
    MX_V6 = "mx-v6.lab.test" @ IpAddr::V6(Ipv6Addr::LOCALHOST);

    // --- Postfix hosts configured like old mail servers (`@SECLEVEL=0`):
    // rustls cannot finish a handshake with any of them ---
    /// TLS 1.0 only, RSA key exchange with CBC (`AES128-SHA`).
    MX_TLS10_RSA = "mx-tls10-rsa.lab.test" @ v4(61);
    /// TLS 1.2 only, RSA key exchange only (`AES128-SHA256:AES128-SHA`).
    MX_TLS12_RSA = "mx-tls12-rsa.lab.test" @ v4(62);
    /// TLS 1.2 only, ECDHE with CBC only (`ECDHE-RSA-AES128-SHA`).
    MX_TLS12_CBC = "mx-tls12-cbc.lab.test" @ v4(63);
    /// TLS 1.2 only, DHE only (`DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA`).
    MX_DHE = "mx-dhe.lab.test" @ v4(64);
    /// Picks its certificate by SNI (`tls_server_sni_maps`): its own leaf by
    /// default, [`MX_SNI_ALIAS`]'s leaf when asked for that name.
    MX_SNI = "mx-sni.lab.test" @ v4(65);
    /// A second MX name on [`MX_SNI`]'s address, with a leaf of its own.
    MX_SNI_ALIAS = "mx-sni-2.lab.test" @ v4(65);

    // --- Postfix hosts with the cipher lists real servers have, for the
    // TLS depth (`--tls-depth`), checked against sslyze ---
    /// TLS 1.0 to 1.3, `ALL:eNULL:@SECLEVEL=0`: NULL, anonymous, 3DES, CBC
    /// and RSA key exchange accepted; the client's order (Postfix's default).
    MX_WEAK = "mx-weak.lab.test" @ v4(70);
    /// TLS 1.2 and 1.3, three suites in the server's order
    /// (`tls_preempt_cipherlist = yes`), CBC first.
    MX_PREFER = "mx-prefer.lab.test" @ v4(71);
    /// TLS 1.2 only, DHE only with a 1024-bit group (Logjam).
    MX_DH1024 = "mx-dh1024.lab.test" @ v4(72);
    /// TLS 1.2 and 1.3, ECDHE with AEAD only.
    MX_AEAD = "mx-aead.lab.test" @ v4(73);
    /// A leaf signed with SHA-1 (`DEFAULT:@SECLEVEL=0` so OpenSSL loads it).
    MX_SHA1 = "mx-sha1.lab.test" @ v4(76);

    // --- Exim (GnuTLS), unpacked into the lab folder ---
    /// Exim with STARTTLS and a valid lab-CA leaf.
    MX_EXIM = "mx-exim.lab.test" @ v4(30);

    // --- More MTAs, each its own dialect and TLS stack ---
    /// OpenSMTPD (Debian 12's 6.8.0p2 on OpenSSL 3), unpacked into the lab
    /// folder. Its privilege-separated key process cannot sign or decrypt
    /// with OpenSSL 3: every handshake ends in a fatal alert from the server
    /// after its Certificate, as on every Debian 12 OpenSMTPD on the Internet.
    MX_OPENSMTPD = "mx-opensmtpd.lab.test" @ v4(31);
    /// Haraka from npm (Node's TLS), valid lab-CA leaf.
    MX_HARAKA = "mx-haraka.lab.test" @ v4(32);
    /// Sendmail 8.17 (OpenSSL 3), unpacked into the lab folder, valid lab-CA leaf.
    MX_SENDMAIL = "mx-sendmail.lab.test" @ v4(33);

    // --- Fakes run by the harness (plain tokio listeners) ---
    /// Nothing listens: connection refused.
    MX_CLOSED = "mx-closed.lab.test" @ v4(40);
    /// Accepts, never greets.
    MX_SILENT = "mx-silent.lab.test" @ v4(41);
    /// Endless multi-line greeting (`220-` forever).
    MX_ENDLESS = "mx-endless.lab.test" @ v4(42);
    /// One 1 MiB line.
    MX_LONGLINE = "mx-longline.lab.test" @ v4(43);
    /// One byte per second.
    MX_TRICKLE = "mx-trickle.lab.test" @ v4(44);
    /// Sends bytes right after the STARTTLS 220 (response injection), then TLS.
    MX_INJECT = "mx-inject.lab.test" @ v4(45);
    /// Replies holding invalid UTF-8.
    MX_BADUTF8 = "mx-badutf8.lab.test" @ v4(46);
    /// Scripted SSLv3 server: answers an SSLv3 ClientHello with a canned ServerHello.
    MX_SSL3 = "mx-ssl3.lab.test" @ v4(47);
    /// Scripted TLS server with the weaknesses no lab MTA can have: SSLv2,
    /// RC4, export, 3DES, compression, no secure renegotiation, no fallback
    /// SCSV (`mxscope_tests::scripted::weak_tls`).
    MX_WEAKTLS = "mx-weaktls.lab.test" @ v4(74);
    /// Scripted TLS server answering like one vulnerable to Heartbleed and
    /// CCS injection (`mxscope_tests::scripted::vuln_tls`).
    MX_VULN = "mx-vuln.lab.test" @ v4(75);
    /// Counts SMTP sessions per client address (no STARTTLS).
    MX_COUNT = "mx-count.lab.test" @ v4(48);
    /// A second MX name for the counting server's address.
    MX_COUNT_ALIAS = "mx-count-2.lab.test" @ v4(48);
    /// STARTTLS switched on or off by the test (a server that changed between scans).
    MX_TOGGLE = "mx-toggle.lab.test" @ v4(49);
}

/// Every Postfix host, with its `master.cf` line.
pub const POSTFIX_HOSTS: &[Host] = &[
    MX_VALID,
    MX_ECDSA,
    MX_SELFSIGNED,
    MX_EXPIRED,
    MX_MISMATCH,
    MX_SMALLKEY,
    MX_LEGACY,
    MX_NOSTARTTLS,
    MX_DISCARD,
    MX_REFUSE,
    MX_TLS454,
    MX_BACKUP,
    MX_V6,
    MX_TLS10_RSA,
    MX_TLS12_RSA,
    MX_TLS12_CBC,
    MX_DHE,
    MX_SNI,
    MX_WEAK,
    MX_PREFER,
    MX_DH1024,
    MX_AEAD,
    MX_SHA1,
];

/// The Postfix hosts whose cipher lists the TLS depth tests enumerate.
pub const DEPTH_HOSTS: [Host; 6] = [
    MX_VALID,
    MX_WEAK,
    MX_PREFER,
    MX_DH1024,
    MX_AEAD,
    MX_TLS12_CBC,
];

/// The legacy-only Postfix hosts (facts from the first flight).
pub const LEGACY_ONLY_HOSTS: [Host; 4] = [MX_TLS10_RSA, MX_TLS12_RSA, MX_TLS12_CBC, MX_DHE];

/// Domains of the lab zone and what they test (served by Unbound).
pub mod domains {
    /// One MX: `10 mx-valid`.
    pub const SINGLE: &str = "single.lab.test";
    /// Several MX: `10 mx-valid`, `20 mx-backup`, `30 mx-ecdsa`.
    pub const MULTI: &str = "multi.lab.test";
    /// Two domains sharing one MX (`10 mx-valid`) with `single.lab.test`.
    pub const SHARED_A: &str = "shared-a.lab.test";
    pub const SHARED_B: &str = "shared-b.lab.test";
    /// RFC 7505 null MX.
    pub const NULLMX: &str = "nullmx.lab.test";
    /// No MX, an A record `127.0.1.10` (implicit MX).
    pub const IMPLICIT: &str = "implicit.lab.test";
    /// Does not exist.
    pub const NXDOMAIN: &str = "nxdomain.lab.test";
    /// Exists (a TXT record) but has neither MX nor A/AAAA.
    pub const NODATA: &str = "nodata.lab.test";
    /// MX whose exchange name has no address.
    pub const MX_NOADDR: &str = "noaddr.lab.test";
    /// MX whose exchange name is a CNAME (to mx-valid).
    pub const MX_CNAME: &str = "cname.lab.test";
    /// IDN domain `bücher.lab.test` (A-label `xn--bcher-kva.lab.test`), MX mx-valid.
    pub const IDN_UNICODE: &str = "bücher.lab.test";
    pub const IDN_ASCII: &str = "xn--bcher-kva.lab.test";
    /// MX only reachable over IPv6 (`mx-v6`, AAAA `::1`).
    pub const V6: &str = "v6.lab.test";
    /// MX `10 mx-sni`, `20 mx-sni-2`: two names, one IP, a certificate each.
    pub const SNI_BOTH: &str = "sni-both.lab.test";
    /// Three domains whose MX (two names) share the counting server's one IP.
    pub const COUNTED: [&str; 3] = ["count-a.lab.test", "count-b.lab.test", "count-c.lab.test"];
    /// Any `<label>.gen.lab.test` has MX `10 mx-valid.lab.test` (for large scans).
    pub const GENERATED_ZONE: &str = "gen.lab.test";
    /// Every lab MX host has a domain `<label>.lab.test` → `10 mx-<label>.lab.test`,
    /// e.g. `expired.lab.test` → `mx-expired.lab.test`.
    pub fn for_host(host: &super::Host) -> String {
        let label = host
            .name
            .strip_prefix("mx-")
            .and_then(|n| n.split('.').next())
            .unwrap_or(host.name);
        format!("{label}.lab.test")
    }
}
