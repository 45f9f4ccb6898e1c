//! The lab's Sendmail (DESIGN §6): Debian 12's `sendmail-bin` 8.17 (on
//! OpenSSL 3), unpacked by `tests/lab/install.sh` under [`DEFAULT_PREFIX`]
//! (it conflicts with the installed Postfix), its `sendmail.cf` built with
//! `m4` from the package's own `cf.m4` at start, run in the foreground
//! (`sendmail -bD`) with that file (`-C`).
//!
//! Sendmail asks the C library for its own host name and for every
//! client's name, and the C library would ask the machine's resolver. So it
//! runs in private mount and UTS namespaces (`unshare --mount --uts`): host
//! name `mx-sendmail.lab.test`, and the lab's `hosts` and `nsswitch.conf`
//! (hosts from files only) bound over `/etc`'s. Nothing it does leaves the
//! lab; it logs only to syslog, which the lab does not run.
//!
//! Layout under `dir`: `sendmail.mc`, `sendmail.cf`, `hosts`,
//! `nsswitch.conf`, `service.switch` (Sendmail's own: files only), `tls/` (leaf chain, key (mode 0600), lab CA),
//! `mqueue/`.
//!
//! Sendmail stops listening when the load average passes `RefuseLA`, which a
//! shared test machine does: the lab turns the load limits off.
//!
//! Sendmail relays nothing: with no relay table every RCPT outside its own
//! name is refused, and the lab never sends it a message.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::certs::LabCerts;
use crate::mta::postfix::{
    claim_mta_ports, kill_and_wait, refuse_if_taken, wait_accepting, watched, working_in,
};
use crate::plan;
use crate::process::Daemon;

/// Where `tests/lab/install.sh` unpacks Sendmail's packages; override with
/// `$MXSCOPE_SENDMAIL` (a folder holding `usr/libexec/sendmail/sendmail`
/// and `usr/share/sendmail/cf`).
pub const DEFAULT_PREFIX: &str = "/opt/mxscope-lab/sendmail";

/// How long [`Sendmail::start`] waits for Sendmail to accept.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// In the private namespaces: the lab's name files over `/etc`'s, the host
/// name, then `sendmail -bD -C CF`.
const SCRIPT: &str = r#"set -e
mount --bind "$1" /etc/hosts
mount --bind "$2" /etc/nsswitch.conf
hostname "$3"
exec "$4" -C "$5" -bD
"#;

/// Sendmail (unpacked from the Debian packages) serving
/// [`crate::plan::MX_SENDMAIL`].
#[derive(Debug)]
pub struct Sendmail {
    /// The generated configuration (`sendmail -C`).
    pub config: PathBuf,
    daemon: Daemon,
}

impl Sendmail {
    /// Configure and start Sendmail under `dir`; returns once it accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let prefix = prefix();
        let binary = prefix.join("usr/libexec/sendmail/sendmail");
        let cf_m4 = prefix.join("usr/share/sendmail/cf/m4/cf.m4");
        if !binary.exists() || !cf_m4.exists() {
            bail!(
                "no Sendmail under {} (run tests/lab/install.sh, or set MXSCOPE_SENDMAIL)",
                prefix.display()
            );
        }
        let tls_dir = dir.join("tls");
        let queue = dir.join("mqueue");
        for sub in [&tls_dir, &queue] {
            std::fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        std::fs::set_permissions(&queue, std::fs::Permissions::from_mode(0o700))
            .context("chmod 700 the queue")?;
        claim_mta_ports()?;
        kill_and_wait(&working_in(&queue), "stale sendmail")?;
        let addr = SocketAddr::new(plan::MX_SENDMAIL.ip, plan::SMTP_PORT);
        refuse_if_taken(&[addr])?;

        let leaf = certs.leaf(&plan::MX_SENDMAIL)?;
        let files = Files {
            chain: tls_dir.join("chain.pem"),
            key: tls_dir.join("key.pem"),
            ca: tls_dir.join("ca.pem"),
            hosts: dir.join("hosts"),
            nsswitch: dir.join("nsswitch.conf"),
            queue,
            dir: dir.to_path_buf(),
            tls_dir,
        };
        for (from, to) in [
            (&leaf.chain, &files.chain),
            (&leaf.key, &files.key),
            (&certs.ca_pem, &files.ca),
        ] {
            std::fs::copy(from, to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("chmod 600 {}", to.display()))?;
        }
        write(
            &files.hosts,
            &format!(
                "127.0.0.1 localhost\n{ip} {name}\n",
                ip = plan::MX_SENDMAIL.ip,
                name = plan::MX_SENDMAIL.name
            ),
        )?;
        write(&dir.join("service.switch"), "hosts files\naliases files\n")?;
        write(
            &files.nsswitch,
            "passwd: files\ngroup: files\nshadow: files\nhosts: files\nservices: files\n",
        )?;
        let mc = dir.join("sendmail.mc");
        write(&mc, &mc_text(&cf_m4, &files))?;
        let config = dir.join("sendmail.cf");
        m4(&mc, &config)?;

        let mut cmd = watched(Path::new("unshare"));
        cmd.args(["--mount", "--uts", "--propagation", "private", "sh", "-c"])
            .args([SCRIPT, "lab-sendmail"])
            .arg(&files.hosts)
            .arg(&files.nsswitch)
            .arg(plan::MX_SENDMAIL.name)
            .arg(&binary)
            .arg(&config);
        let daemon = Daemon::spawn("sendmail", cmd).context("spawning sendmail")?;
        let mut sendmail = Self { config, daemon };
        sendmail.wait_ready(addr)?;
        Ok(sendmail)
    }

    fn wait_ready(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let ready = wait_accepting(&[addr], START_TIMEOUT, || {
            self.daemon
                .exited()
                .map(|s| format!("sendmail exited ({s})"))
        });
        ready.with_context(|| {
            format!(
                "sendmail (config {}) did not come up (it logs to syslog only: try \
                 `sendmail -C {0} -bt -d0.1`)",
                self.config.display()
            )
        })
    }
}

/// The folder Sendmail is unpacked into: `$MXSCOPE_SENDMAIL` or
/// [`DEFAULT_PREFIX`].
pub fn prefix() -> PathBuf {
    std::env::var_os("MXSCOPE_SENDMAIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PREFIX))
}

/// The lab files the configuration names.
struct Files {
    dir: PathBuf,
    tls_dir: PathBuf,
    chain: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    hosts: PathBuf,
    nsswitch: PathBuf,
    queue: PathBuf,
}

fn mc_text(cf_m4: &Path, f: &Files) -> String {
    format!(
        "\
divert(-1)
# mxscope lab Sendmail: generated at test start, see tests/src/mta/sendmail.rs
divert(0)dnl
include(`{cf_m4}')dnl
VERSIONID(`mxscope lab')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{name}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confSERVICE_SWITCH_FILE', `{dir}/service.switch')dnl
define(`confHOSTS_FILE', `{hosts}')dnl
define(`QUEUE_DIR', `{queue}')dnl
define(`STATUS_FILE', `{dir}/statistics')dnl
define(`confPID_FILE', `{dir}/sendmail.pid')dnl
define(`ALIAS_FILE', `')dnl
define(`confCACERT_PATH', `{tls}')dnl
define(`confCACERT', `{ca}')dnl
define(`confSERVER_CERT', `{chain}')dnl
define(`confSERVER_KEY', `{key}')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confPRIVACY_FLAGS', `goaway')dnl
define(`confTO_IDENT', `0')dnl
dnl a busy test machine must not make it stop listening (load-average limits off)
define(`confREFUSE_LA', `100000')dnl
define(`confQUEUE_LA', `100000')dnl
define(`confDELAY_LA', `0')dnl
DAEMON_OPTIONS(`Family=inet, Name=MTA, Port={port}, Addr={ip}')dnl
FEATURE(`nocanonify')dnl
FEATURE(`no_default_msa')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
",
        cf_m4 = cf_m4.display(),
        name = plan::MX_SENDMAIL.name,
        ip = plan::MX_SENDMAIL.ip,
        port = plan::SMTP_PORT,
        dir = f.dir.display(),
        hosts = f.hosts.display(),
        queue = f.queue.display(),
        tls = f.tls_dir.display(),
        ca = f.ca.display(),
        chain = f.chain.display(),
        key = f.key.display(),
    )
}

/// `m4 mc > cf`, failing on any complaint.
fn m4(mc: &Path, cf: &Path) -> anyhow::Result<()> {
    let out = Command::new("m4")
        .arg(mc)
        .stdin(Stdio::null())
        .output()
        .context("running m4 (run tests/lab/install.sh)")?;
    if !out.status.success() || !out.stderr.is_empty() {
        bail!(
            "m4 {} failed: {}",
            mc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::write(cf, &out.stdout).with_context(|| format!("writing {}", cf.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
