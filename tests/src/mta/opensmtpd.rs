//! The lab's OpenSMTPD (DESIGN §6): Debian 12's `opensmtpd` (6.8.0p2, on
//! OpenSSL 3), unpacked by `tests/lab/install.sh` into [`DEFAULT_BINARY`]'s
//! folder (it conflicts with the installed Postfix), run in the foreground
//! (`smtpd -d`) with its own configuration (`-f`).
//!
//! OpenSMTPD compiles its queue (`/var/spool/smtpd`) and control socket
//! (`/var/run/smtpd.sock`) in. So that a lab never touches the machine's
//! folders, and two labs in two network namespaces never share a queue or a
//! socket, it runs in a private mount namespace (`unshare --mount`) with the
//! lab's `spool/` bound over `/var/spool` and `run/` over `/run`.
//!
//! Layout under `dir`: `smtpd.conf`, `tls/` (leaf chain and key, mode 0600,
//! owned by root as OpenSMTPD demands), `spool/`, `run/`, `smtpd.log`.
//!
//! Its TLS does not work, and that is the point of keeping it as it is:
//! OpenSMTPD 6.8 signs and decrypts through its privilege-separated key
//! process with an OpenSSL 1.1 engine trick that OpenSSL 3 breaks, so every
//! handshake (TLS 1.2 or 1.3, RSA or ECDSA key) ends with a fatal
//! `internal_error` (or `decrypt_error` for RSA key exchange) alert from the
//! server, sent after its ServerHello and Certificate (upstream issues 1171
//! and 1239). Every Debian 12 OpenSMTPD on the Internet behaves so; the lab
//! shows what the probe records for it.
//!
//! Every RCPT is rejected (`match from any for any reject`): the lab
//! OpenSMTPD never delivers anything, and it never looks anything up.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::certs::LabCerts;
use crate::mta::postfix::{
    claim_mta_ports, find_processes, kill_and_wait, refuse_if_taken, tail, wait_accepting, watched,
};
use crate::plan;
use crate::process::Daemon;

/// Where `tests/lab/install.sh` unpacks OpenSMTPD's daemon; override with
/// `$MXSCOPE_OPENSMTPD`.
pub const DEFAULT_BINARY: &str = "/opt/mxscope-lab/opensmtpd/usr/sbin/smtpd";

/// How long [`OpenSmtpd::start`] waits for OpenSMTPD to accept.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Mounts the lab's spool and run folders in a private mount namespace, then
/// becomes `smtpd -d -f CONFIG`, logging to LOG.
const SCRIPT: &str = r#"set -e
mount --bind "$1" /var/spool
mount --bind "$2" /run
exec "$3" -d -f "$4" >"$5" 2>&1
"#;

/// OpenSMTPD (unpacked from the Debian package) serving
/// [`crate::plan::MX_OPENSMTPD`].
#[derive(Debug)]
pub struct OpenSmtpd {
    /// The configuration file (`smtpd -f`).
    pub config: PathBuf,
    /// OpenSMTPD's log (its standard error in `-d` mode).
    pub log: PathBuf,
    daemon: Daemon,
}

impl OpenSmtpd {
    /// Configure and start OpenSMTPD under `dir`; returns once it accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let binary = binary();
        if !binary.exists() {
            bail!(
                "no OpenSMTPD at {} (run tests/lab/install.sh, or set MXSCOPE_OPENSMTPD)",
                binary.display()
            );
        }
        let config = dir.join("smtpd.conf");
        let tls_dir = dir.join("tls");
        let spool = dir.join("spool");
        let run = dir.join("run");
        let log = dir.join("smtpd.log");
        for sub in [&tls_dir, &spool, &run] {
            std::fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        claim_mta_ports()?;
        stop_stale(&config)?;
        let addr = SocketAddr::new(plan::MX_OPENSMTPD.ip, plan::SMTP_PORT);
        refuse_if_taken(&[addr])?;

        let leaf = certs.leaf(&plan::MX_OPENSMTPD)?;
        let chain = tls_dir.join("chain.pem");
        let key = tls_dir.join("key.pem");
        for (from, to) in [(&leaf.chain, &chain), (&leaf.key, &key)] {
            std::fs::copy(from, to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("chmod 600 {}", to.display()))?;
        }
        std::fs::write(&config, config_text(&chain, &key))
            .with_context(|| format!("writing {}", config.display()))?;

        let mut cmd = watched(Path::new("unshare"));
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", SCRIPT])
            .arg("lab-opensmtpd")
            .args([&spool, &run, &binary, &config, &log]);
        let daemon = Daemon::spawn("opensmtpd", cmd).context("spawning opensmtpd")?;
        let mut smtpd = Self {
            config,
            log,
            daemon,
        };
        smtpd.wait_ready(addr)?;
        Ok(smtpd)
    }

    /// The last `lines` lines of OpenSMTPD's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    fn wait_ready(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let ready = wait_accepting(&[addr], START_TIMEOUT, || {
            self.daemon
                .exited()
                .map(|s| format!("opensmtpd exited ({s})"))
        });
        ready.with_context(|| {
            format!(
                "opensmtpd (config {}) did not come up\n{}",
                self.config.display(),
                self.log_tail(20)
            )
        })
    }
}

/// The OpenSMTPD daemon: `$MXSCOPE_OPENSMTPD` or [`DEFAULT_BINARY`].
pub fn binary() -> PathBuf {
    std::env::var_os("MXSCOPE_OPENSMTPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY))
}

fn config_text(chain: &Path, key: &Path) -> String {
    format!(
        "\
# mxscope lab OpenSMTPD: generated at test start, see tests/src/mta/opensmtpd.rs
pki {name} cert \"{chain}\"
pki {name} key \"{key}\"
# STARTTLS offered, not required
listen on {ip} port {port} tls pki {name} hostname {name}
# deliver nothing: every RCPT is refused
match from any for any reject
",
        name = plan::MX_OPENSMTPD.name,
        ip = plan::MX_OPENSMTPD.ip,
        port = plan::SMTP_PORT,
        chain = chain.display(),
        key = key.display(),
    )
}

/// Kill an OpenSMTPD left over from an earlier run with this config file
/// (found by its exact command line).
fn stop_stale(config: &Path) -> anyhow::Result<()> {
    let pids = find_processes(|_, args| {
        args.first().is_some_and(|a| a.ends_with("/smtpd"))
            && args
                .windows(2)
                .any(|w| w[0] == "-f" && Path::new(&w[1]) == config)
    });
    kill_and_wait(&pids, "stale opensmtpd")
}
