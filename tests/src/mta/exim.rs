//! The lab's Exim (DESIGN §6): Debian's `exim4-daemon-light`, unpacked by
//! `tests/lab/install.sh` into [`DEFAULT_BINARY`]'s folder (it conflicts with
//! the installed Postfix), run in the foreground (`-bdf`) with its own
//! configuration (`-C`), TLS by GnuTLS.
//!
//! Layout under `dir`: `exim.conf`, `tls/` (a copy of the leaf, readable by
//! the Exim user: Exim reads its key after dropping root), `spool/`, `log/`.
//!
//! No host lookups, no ident, no routers, every RCPT denied: the lab Exim
//! never looks anything up and never delivers anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::certs::LabCerts;
use crate::mta::postfix::{
    claim_mta_ports, find_processes, kill_and_wait, refuse_if_taken, tail, wait_accepting, watched,
};
use crate::plan;
use crate::process::Daemon;

/// Where `tests/lab/install.sh` unpacks Exim's binary; override with
/// `$MXSCOPE_EXIM`.
pub const DEFAULT_BINARY: &str = "/opt/mxscope-lab/exim/usr/sbin/exim4";

/// The user Debian's Exim is built with (`EXIM_USER`); install.sh creates it.
const EXIM_USER: &str = "Debian-exim";

/// How long [`Exim::start`] waits for Exim to accept.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Exim (unpacked from the Debian package) serving [`crate::plan::MX_EXIM`].
#[derive(Debug)]
pub struct Exim {
    /// The configuration file (`exim -C`).
    pub config: PathBuf,
    /// Exim's log folder (`mainlog`, `rejectlog`, `paniclog`).
    pub log_dir: PathBuf,
    daemon: Daemon,
}

impl Exim {
    /// Configure and start Exim under `dir`; returns once it accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let binary = binary();
        if !binary.exists() {
            bail!(
                "no Exim at {} (run tests/lab/install.sh, or set MXSCOPE_EXIM)",
                binary.display()
            );
        }
        let config = dir.join("exim.conf");
        let tls_dir = dir.join("tls");
        let spool = dir.join("spool");
        let log_dir = dir.join("log");
        for sub in [&tls_dir, &spool, &log_dir] {
            std::fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        claim_mta_ports()?;
        stop_stale(&config)?;
        let addr = SocketAddr::new(plan::MX_EXIM.ip, plan::SMTP_PORT);
        refuse_if_taken(&[addr])?;

        let leaf = certs.leaf(&plan::MX_EXIM)?;
        let chain = tls_dir.join("chain.pem");
        let key = tls_dir.join("key.pem");
        for (from, to) in [(&leaf.chain, &chain), (&leaf.key, &key)] {
            std::fs::copy(from, to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
        let ocsp = tls_dir.join("ocsp.der");
        certs.ocsp_response(&plan::MX_EXIM, &ocsp)?;
        let tls = TlsFiles {
            chain: &chain,
            key: &key,
            ocsp: &ocsp,
        };
        std::fs::write(&config, config_text(dir, &tls, &spool, &log_dir))
            .with_context(|| format!("writing {}", config.display()))?;
        // Exim receives (and logs, and reads its TLS key) as its own user.
        let owner = format!("{EXIM_USER}:{EXIM_USER}");
        let out = Command::new("chown")
            .args(["-R", &owner])
            .args([&tls_dir, &spool, &log_dir])
            .stdin(Stdio::null())
            .output()
            .context("running chown")?;
        if !out.status.success() {
            bail!(
                "chown {owner} failed (run tests/lab/install.sh): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }

        let mut cmd = watched(&binary);
        cmd.arg("-C").arg(&config).arg("-bdf");
        let daemon = Daemon::spawn("exim", cmd).context("spawning exim")?;
        let mut exim = Self {
            config,
            log_dir,
            daemon,
        };
        exim.wait_ready(addr)?;
        Ok(exim)
    }

    /// The last `lines` lines of Exim's main and panic logs, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "mainlog:\n{}\npaniclog:\n{}",
            tail(&self.log_dir.join("mainlog"), lines),
            tail(&self.log_dir.join("paniclog"), lines)
        )
    }

    fn wait_ready(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let ready = wait_accepting(&[addr], START_TIMEOUT, || {
            self.daemon.exited().map(|s| format!("exim exited ({s})"))
        });
        ready.with_context(|| {
            format!(
                "exim (config {}) did not come up\n{}",
                self.config.display(),
                self.log_tail(20)
            )
        })
    }
}

/// The Exim binary: `$MXSCOPE_EXIM` or [`DEFAULT_BINARY`].
pub fn binary() -> PathBuf {
    std::env::var_os("MXSCOPE_EXIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY))
}

/// The TLS files of the lab's Exim.
struct TlsFiles<'a> {
    chain: &'a Path,
    key: &'a Path,
    /// A DER OCSP response from the lab CA, stapled (`tls_ocsp_file`).
    ocsp: &'a Path,
}

fn config_text(dir: &Path, tls: &TlsFiles<'_>, spool: &Path, log_dir: &Path) -> String {
    format!(
        "\
# mxscope lab Exim: generated at test start, see tests/src/mta/exim.rs
primary_hostname = {name}
qualify_domain = {zone}
smtp_banner = $primary_hostname ESMTP mxscope lab
daemon_smtp_ports = {port}
local_interfaces = <; {ip}
spool_directory = {spool}
log_file_path = {log}/%slog
pid_file_path = {pid}
keep_environment =
# never talk to the world: no reverse lookups, no ident
host_lookup =
rfc1413_hosts =
# TLS (GnuTLS): STARTTLS for everyone, TLS 1.2 and 1.3
tls_advertise_hosts = *
tls_certificate = {chain}
tls_privatekey = {key}
tls_ocsp_file = {ocsp}
tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2
# no cap on concurrent sessions (the default, 20, refuses sslyze's bursts)
smtp_accept_max = 0
# relay nothing, deliver nothing
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_rcpt:
  deny message = the lab accepts no mail
",
        name = plan::MX_EXIM.name,
        zone = plan::ZONE,
        port = plan::SMTP_PORT,
        ip = plan::MX_EXIM.ip,
        spool = spool.display(),
        log = log_dir.display(),
        pid = dir.join("exim.pid").display(),
        chain = tls.chain.display(),
        key = tls.key.display(),
        ocsp = tls.ocsp.display(),
    )
}

/// Kill an Exim daemon left over from an earlier run with this config file
/// (found by its exact command line).
fn stop_stale(config: &Path) -> anyhow::Result<()> {
    let pids = find_processes(|_, args| {
        args.first()
            .is_some_and(|a| a.ends_with("exim4") || a.ends_with("exim"))
            && args
                .windows(2)
                .any(|w| w[0] == "-C" && Path::new(&w[1]) == config)
            && args.iter().any(|a| a == "-bdf")
    });
    kill_and_wait(&pids, "stale exim daemon")
}
