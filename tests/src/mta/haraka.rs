//! The lab's Haraka (DESIGN §6): the Node.js MTA from npm, installed by
//! `tests/lab/install.sh` under [`DEFAULT_PREFIX`], run in the foreground
//! (`daemonize=false`, one process: `nodes=0`) from its own config folder.
//! TLS is Node's `tls` module (the OpenSSL that Node ships).
//!
//! Layout under `dir`: `config/` (`smtp.ini`, `connection.ini` (Haraka's
//! defaults), `plugins`, `me`, `tls.ini`,
//! `tls_cert.pem`, `tls_key.pem`, `dhparams.pem`), `plugins/lab_rdns.js`,
//! `queue/` (Haraka's outbound queue, always empty), `haraka.log`.
//!
//! Plugins: `lab_rdns` (a local plugin naming every client `client.lab.test`:
//! Haraka would otherwise ask the system resolver for the client's PTR) and
//! `tls`. No RCPT plugin is loaded, so Haraka refuses every recipient: the
//! lab Haraka never delivers anything.

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

/// Where `tests/lab/install.sh` installs Haraka (`npm install --prefix`);
/// override with `$MXSCOPE_HARAKA` (a prefix holding `node_modules/Haraka`).
pub const DEFAULT_PREFIX: &str = "/opt/mxscope-lab/haraka";

/// How long [`Haraka::start`] waits for Haraka to accept (Node loads its
/// public-suffix lists at start).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The name Haraka gives every client (instead of a PTR lookup).
pub const CLIENT_NAME: &str = "client.lab.test";

/// Runs Haraka from its config root, logging to a file.
const SCRIPT: &str = r#"exec node "$1" -c "$2" >"$3" 2>&1"#;

/// Haraka (from npm) serving [`crate::plan::MX_HARAKA`].
#[derive(Debug)]
pub struct Haraka {
    /// The config root (`haraka -c`).
    pub root: PathBuf,
    /// Haraka's log (its standard output).
    pub log: PathBuf,
    daemon: Daemon,
}

impl Haraka {
    /// Configure and start Haraka under `dir`; returns once it accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let haraka = prefix().join("node_modules/Haraka");
        let main = haraka.join("bin/haraka");
        if !main.exists() {
            bail!(
                "no Haraka at {} (run tests/lab/install.sh, or set MXSCOPE_HARAKA)",
                main.display()
            );
        }
        let config = dir.join("config");
        let plugins = dir.join("plugins");
        let log = dir.join("haraka.log");
        for sub in [&config, &plugins] {
            std::fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        claim_mta_ports()?;
        stop_stale(dir)?;
        let addr = SocketAddr::new(plan::MX_HARAKA.ip, plan::SMTP_PORT);
        refuse_if_taken(&[addr])?;

        let leaf = certs.leaf(&plan::MX_HARAKA)?;
        for (from, to) in [(&leaf.chain, "tls_cert.pem"), (&leaf.key, "tls_key.pem")] {
            let to = config.join(to);
            std::fs::copy(from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
        // Haraka's own defaults for the session (banner, limits), which
        // `haraka -i` would copy into a new instance.
        let defaults = haraka.join("config/connection.ini");
        std::fs::copy(&defaults, config.join("connection.ini"))
            .with_context(|| format!("copying {}", defaults.display()))?;
        dhparams(&config.join("dhparams.pem"))?;
        for (name, text) in config_files() {
            write(&config.join(name), &text)?;
        }
        write(&plugins.join("lab_rdns.js"), RDNS_PLUGIN)?;

        let mut cmd = watched(Path::new("sh"));
        cmd.args(["-c", SCRIPT, "lab-haraka"])
            .arg(&main)
            .arg(dir)
            .arg(&log);
        let daemon = Daemon::spawn("haraka", cmd).context("spawning haraka")?;
        let mut haraka = Self {
            root: dir.to_path_buf(),
            log,
            daemon,
        };
        haraka.wait_ready(addr)?;
        Ok(haraka)
    }

    /// The last `lines` lines of Haraka's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    fn wait_ready(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let ready = wait_accepting(&[addr], START_TIMEOUT, || {
            self.daemon.exited().map(|s| format!("haraka exited ({s})"))
        });
        ready.with_context(|| {
            format!(
                "haraka (root {}) did not come up\n{}",
                self.root.display(),
                self.log_tail(20)
            )
        })
    }
}

/// The npm prefix Haraka is installed under: `$MXSCOPE_HARAKA` or
/// [`DEFAULT_PREFIX`].
pub fn prefix() -> PathBuf {
    std::env::var_os("MXSCOPE_HARAKA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PREFIX))
}

/// Answers Haraka's `lookup_rdns` hook without DNS.
const RDNS_PLUGIN: &str = "\
// mxscope lab: name every client without asking any resolver
exports.hook_lookup_rdns = function (next) {
    next(OK, 'client.lab.test')
}
";

fn config_files() -> Vec<(&'static str, String)> {
    let host = plan::MX_HARAKA;
    vec![
        (
            "smtp.ini",
            format!(
                "; mxscope lab Haraka: generated at test start, see tests/src/mta/haraka.rs\n\
                 [main]\nlisten={ip}:{port}\nnodes=0\ndaemonize=false\n",
                ip = host.ip,
                port = plan::SMTP_PORT
            ),
        ),
        ("plugins", "lab_rdns\ntls\n".into()),
        ("me", format!("{}\n", host.name)),
        (
            "tls.ini",
            "key=tls_key.pem\ncert=tls_cert.pem\ndhparam=dhparams.pem\n".into(),
        ),
        ("log.ini", "[main]\nlevel=info\ntimestamps=true\n".into()),
    ]
}

/// DH parameters for Haraka's DHE suites, made quickly (`-dsaparam`): Haraka
/// would otherwise generate safe primes at start, which can take minutes.
fn dhparams(path: &Path) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(["dhparam", "-dsaparam", "-out"])
        .arg(path)
        .arg("2048")
        .stdin(Stdio::null())
        .output()
        .context("running openssl dhparam")?;
    if !out.status.success() {
        bail!(
            "openssl dhparam failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Kill a Haraka left over from an earlier run with this config root.
fn stop_stale(root: &Path) -> anyhow::Result<()> {
    let pids = find_processes(|_, args| {
        args.first()
            .is_some_and(|a| a == "node" || a.ends_with("/node"))
            && args.iter().any(|a| a.ends_with("/haraka"))
            && args
                .windows(2)
                .any(|w| w[0] == "-c" && Path::new(&w[1]) == root)
    });
    kill_and_wait(&pids, "stale haraka")
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
