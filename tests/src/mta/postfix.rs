//! The lab's Postfix (DESIGN §6): one instance with its own configuration
//! under the lab folder, one `master.cf` line per MX host with `-o`
//! overrides, the master daemon in the foreground as a [`Daemon`].
//!
//! Layout under `dir`: `etc/` (`main.cf`, `master.cf`, `discard.cidr`),
//! `spool/` (queue_directory), `data/` (data_directory), `log/maillog`.
//!
//! Nothing here may talk to the world: DNS is off (`smtpd_peername_lookup`,
//! `smtp_dns_support_level`), every RCPT is rejected and every transport is
//! `error`, so the lab never relays or delivers anything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::certs::LabCerts;
use crate::plan::{self, Host};
use crate::process::Daemon;

/// How long [`Postfix::start`] waits for every host to accept.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `master` in Debian's daemon_directory (override with `$MXSCOPE_POSTFIX_MASTER`).
const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// Support services every instance needs (`master.cf` lines, no chroot).
const SERVICES: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// One Postfix instance serving every host of [`crate::plan::POSTFIX_HOSTS`].
#[derive(Debug)]
pub struct Postfix {
    /// The instance's config_directory (`postfix -c` / `postconf -c`).
    pub config_dir: PathBuf,
    /// Postfix's log (`maillog_file`).
    pub maillog: PathBuf,
    daemon: Daemon,
}

impl Postfix {
    /// Configure and start Postfix under `dir`; returns once every host accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let config_dir = dir.join("etc");
        let log_dir = dir.join("log");
        let maillog = log_dir.join("maillog");
        for sub in [&config_dir, &log_dir, &dir.join("spool")] {
            std::fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        claim_mta_ports()?;
        stop_stale(&config_dir, &dir.join("spool"))?;
        let addrs: Vec<_> = plan::POSTFIX_HOSTS
            .iter()
            .map(|h| std::net::SocketAddr::new(h.ip, plan::SMTP_PORT))
            .collect();
        // Postfix listens with SO_REUSEPORT: a foreign listener would not
        // make it fail, the two would silently share the address.
        refuse_if_taken(&addrs)?;

        let discard = config_dir.join("discard.cidr");
        write(
            &discard,
            &format!(
                "# STARTTLS is hidden from vantage B only\n{}/32 starttls\n",
                plan::VANTAGE_B
            ),
        )?;
        write(&config_dir.join("main.cf"), &main_cf(dir, &maillog))?;
        write(&config_dir.join("master.cf"), &master_cf(certs, &discard)?)?;

        // `postfix check` creates the queue folders with Postfix's owners
        // (post-install create-missing). Postfix prints its complaints only
        // to a tty (or syslog): give it one with `script`.
        let check = format!("postfix -c '{}' check", path(&config_dir)?);
        let out = Command::new("script")
            .args(["-qec", &check, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .context("running `script -qec 'postfix check'` (run tests/lab/install.sh)")?;
        if !out.status.success() {
            bail!(
                "{check} failed: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }

        let mut cmd = watched(&master());
        cmd.arg("-c").arg(&config_dir).arg("-d");
        let daemon = Daemon::spawn("postfix", cmd).context("spawning postfix master")?;
        let mut postfix = Self {
            config_dir,
            maillog,
            daemon,
        };
        postfix.wait_ready(&addrs)?;
        Ok(postfix)
    }

    /// The last `lines` lines of Postfix's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.maillog, lines)
    }

    fn wait_ready(&mut self, addrs: &[std::net::SocketAddr]) -> anyhow::Result<()> {
        let ready = wait_accepting(addrs, START_TIMEOUT, || {
            self.daemon.exited().map(|s| format!("master exited ({s})"))
        });
        ready.with_context(|| {
            format!(
                "postfix (config {}) did not come up; maillog tail:\n{}",
                self.config_dir.display(),
                self.log_tail(30)
            )
        })
    }
}

fn master() -> PathBuf {
    std::env::var_os("MXSCOPE_POSTFIX_MASTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(MASTER))
}

fn main_cf(dir: &Path, maillog: &Path) -> String {
    let interfaces = plan::POSTFIX_HOSTS
        .iter()
        .map(|h| match h.ip {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "\
# mxscope lab Postfix: generated at test start, see tests/src/mta/postfix.rs
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {maillog}
maillog_file_prefixes = {logdir}
# master.cf binds each host; Postfix wants interfaces that exist here
inet_interfaces = loopback-only
# the lab hosts are ours too
proxy_interfaces = {interfaces}
inet_protocols = all
myhostname = mx-lab.{zone}
mydomain = {zone}
myorigin = {zone}
mydestination =
mynetworks =
relayhost =
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP mxscope lab
# never talk to the world: no DNS, no relaying, no delivery
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_relay_restrictions = reject
smtpd_recipient_restrictions = reject
default_transport = error:lab delivers nothing
relay_transport = error:lab delivers nothing
local_transport = error:lab delivers nothing
virtual_transport = error:lab delivers nothing
# TLS: each host's master.cf line says how
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
",
        queue = dir.join("spool").display(),
        data = dir.join("data").display(),
        maillog = maillog.display(),
        logdir = maillog.parent().unwrap_or(dir).display(),
        zone = plan::ZONE,
    )
}

/// How each host's TLS differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// STARTTLS with TLS 1.2 and 1.3, the host's own leaf.
    Modern,
    /// TLS 1.0 to 1.3 at `@SECLEVEL=0`.
    Legacy,
    /// TLS 1.2 only.
    Tls12Only,
    /// `@SECLEVEL=0` so OpenSSL loads the RSA-1024 leaf.
    SmallKey,
    /// No STARTTLS.
    Off,
    /// STARTTLS advertised, but the key does not match the certificate:
    /// TLS setup fails and STARTTLS is answered 454.
    Broken,
    /// An old server's settings: these protocols and ciphers, `@SECLEVEL=0`.
    Old {
        protocols: &'static str,
        ciphers: &'static str,
    },
}

/// Only TLS 1.0 / only TLS 1.2, in the exclusion syntax every Postfix knows.
const ONLY_TLS10: &str = "!SSLv2,!SSLv3,!TLSv1.1,!TLSv1.2,!TLSv1.3";
const ONLY_TLS12: &str = "!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.3";

fn tls_of(host: &Host) -> Tls {
    match host.name {
        n if n == plan::MX_LEGACY.name => Tls::Legacy,
        n if n == plan::MX_BACKUP.name => Tls::Tls12Only,
        n if n == plan::MX_SMALLKEY.name => Tls::SmallKey,
        n if n == plan::MX_NOSTARTTLS.name => Tls::Off,
        n if n == plan::MX_TLS454.name => Tls::Broken,
        n if n == plan::MX_TLS10_RSA.name => Tls::Old {
            protocols: ONLY_TLS10,
            ciphers: "AES128-SHA:@SECLEVEL=0",
        },
        n if n == plan::MX_TLS12_RSA.name => Tls::Old {
            protocols: ONLY_TLS12,
            ciphers: "AES128-SHA256:AES128-SHA:@SECLEVEL=0",
        },
        n if n == plan::MX_TLS12_CBC.name => Tls::Old {
            protocols: ONLY_TLS12,
            ciphers: "ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
        },
        n if n == plan::MX_DHE.name => Tls::Old {
            protocols: ONLY_TLS12,
            ciphers: "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:@SECLEVEL=0",
        },
        n if n == plan::MX_WEAK.name => Tls::Old {
            protocols: ">=TLSv1",
            ciphers: "ALL:eNULL:@SECLEVEL=0",
        },
        n if n == plan::MX_PREFER.name => Tls::Old {
            protocols: ">=TLSv1.2",
            ciphers: "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:AES256-SHA256",
        },
        n if n == plan::MX_DH1024.name => Tls::Old {
            protocols: ONLY_TLS12,
            ciphers: "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        },
        n if n == plan::MX_SHA1.name => Tls::Old {
            protocols: ">=TLSv1.2",
            ciphers: "DEFAULT:@SECLEVEL=0",
        },
        n if n == plan::MX_AEAD.name => Tls::Old {
            protocols: ">=TLSv1.2",
            ciphers: "ECDHE+AESGCM:ECDHE+CHACHA20",
        },
        _ => Tls::Modern,
    }
}

fn master_cf(certs: &LabCerts, discard: &Path) -> anyhow::Result<String> {
    let mut cf = String::from(
        "# mxscope lab Postfix: one smtpd per MX host, see tests/src/mta/postfix.rs\n\
         # service type  private unpriv  chroot  wakeup  maxproc command\n",
    );
    for host in plan::POSTFIX_HOSTS {
        let listen = match host.ip {
            std::net::IpAddr::V4(ip) => format!("{ip}:{}", plan::SMTP_PORT),
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", plan::SMTP_PORT),
        };
        let _ = writeln!(cf, "{listen} inet n - n - - smtpd");
        let mut opts = vec![("myhostname".to_string(), host.name.to_string())];
        let leaf = certs.leaf(host)?;
        let tls = tls_of(host);
        let key = if tls == Tls::Broken {
            // Someone else's key: OpenSSL refuses the pair.
            certs.leaf(&plan::MX_VALID)?.key.clone()
        } else {
            leaf.key.clone()
        };
        if tls != Tls::Off {
            opts.push(("smtpd_tls_security_level".into(), "may".into()));
            opts.push(("smtpd_tls_cert_file".into(), path(&leaf.chain)?));
            opts.push(("smtpd_tls_key_file".into(), path(&key)?));
        } else {
            opts.push(("smtpd_tls_security_level".into(), "none".into()));
        }
        let (protocols, ciphers) = match tls {
            Tls::Legacy => (">=TLSv1", Some("DEFAULT:@SECLEVEL=0")),
            Tls::SmallKey => (">=TLSv1.2", Some("DEFAULT:@SECLEVEL=0")),
            Tls::Tls12Only => ("TLSv1.2", None),
            Tls::Old { protocols, ciphers } => (protocols, Some(ciphers)),
            _ => (">=TLSv1.2", None),
        };
        opts.push(("smtpd_tls_protocols".into(), protocols.into()));
        opts.push(("smtpd_tls_mandatory_protocols".into(), protocols.into()));
        if let Some(list) = ciphers {
            opts.push(("tls_medium_cipherlist".into(), list.into()));
            opts.push(("tls_high_cipherlist".into(), list.into()));
        }
        if host.name == plan::MX_DISCARD.name {
            opts.push((
                "smtpd_discard_ehlo_keyword_address_maps".into(),
                format!("cidr:{}", path(discard)?),
            ));
        }
        if host.name == plan::MX_SNI.name {
            opts.push((
                "tls_server_sni_maps".into(),
                format!("texthash:{}", path(&sni_map(certs, discard)?)?),
            ));
        }
        if host.name == plan::MX_PREFER.name {
            opts.push(("tls_preempt_cipherlist".into(), "yes".into()));
        }
        if host.name == plan::MX_DH1024.name {
            opts.push((
                "smtpd_tls_dh1024_param_file".into(),
                path(&dh1024(discard)?)?,
            ));
        }
        if host.name == plan::MX_REFUSE.name {
            // Client restrictions evaluated at connect: the greeting is 554.
            opts.push(("smtpd_delay_reject".into(), "no".into()));
            opts.push(("smtpd_client_restrictions".into(), "reject".into()));
        }
        for (name, value) in opts {
            let _ = writeln!(cf, "  -o {name}={value}");
        }
    }
    cf.push_str(SERVICES);
    Ok(cf)
}

/// The DH group of [`plan::MX_DH1024`]: RFC 2409's 1024-bit group 2, the
/// widespread default a Logjam finding is about (PKCS#3 `DH PARAMETERS`,
/// generator 2), written beside `beside`.
fn dh1024(beside: &Path) -> anyhow::Result<PathBuf> {
    let file = beside.parent().unwrap_or(beside).join("dh1024.pem");
    let hex = mxscope_worker::tls::dh_groups::MODP_1024;
    let mut prime = vec![0u8]; // a positive INTEGER: the top bit is set
    for i in (0..hex.len()).step_by(2) {
        prime.push(u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16)?);
    }
    // SEQUENCE { INTEGER p (129 bytes), INTEGER 2 }
    let mut der = vec![0x30, 0x81, 0x87, 0x02, 0x81, 0x81];
    der.extend_from_slice(&prime);
    der.extend_from_slice(&[0x02, 0x01, 0x02]);
    let body = mxscope_common::encoding::base64(&der);
    let mut pem = String::from("-----BEGIN DH PARAMETERS-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END DH PARAMETERS-----\n");
    std::fs::write(&file, pem).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

/// The SNI map of [`plan::MX_SNI`]: [`plan::MX_SNI_ALIAS`] gets its own
/// leaf (one file: key, then chain), written beside `beside`.
fn sni_map(certs: &LabCerts, beside: &Path) -> anyhow::Result<PathBuf> {
    let dir = beside.parent().unwrap_or(beside);
    let leaf = certs.leaf(&plan::MX_SNI_ALIAS)?;
    let mut pem = std::fs::read_to_string(&leaf.key)?;
    pem.push_str(&std::fs::read_to_string(&leaf.chain)?);
    let combined = dir.join("sni-alias.pem");
    std::fs::write(&combined, pem)?;
    let map = dir.join("sni_map");
    std::fs::write(
        &map,
        format!("{} {}\n", plan::MX_SNI_ALIAS.name, path(&combined)?),
    )?;
    Ok(map)
}

/// A path as `master.cf` text (no blanks: `-o` values end at white space).
fn path(p: &Path) -> anyhow::Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("lab path {} is not UTF-8", p.display()))?;
    if s.chars().any(char::is_whitespace) {
        bail!("lab path {s} holds white space, which master.cf cannot quote");
    }
    Ok(s.to_string())
}

/// `program` under a small `sh` watchdog, for [`Daemon::spawn`].
///
/// `PR_SET_PDEATHSIG` does not survive a daemon that changes its
/// credentials (Postfix's master does), so the shell runs `program` in the
/// background and leaves a watcher reading its stdin, a pipe whose only
/// writer is the test process: when that ends (or drops the [`Daemon`]), the
/// watcher reads EOF and SIGTERMs `program`. `program` leads its own process
/// group (`setsid`), so a daemon that ends by killing its group (Postfix's
/// master does) takes all its children along. The shell itself exits with
/// `program`, so [`Daemon::exited`] still tells when it died.
pub(crate) fn watched(program: &Path) -> Command {
    const SCRIPT: &str = r#"exec 3<&0
setsid "$@" </dev/null 3<&- &
pid=$!
(while read -r _; do :; done; kill -TERM "$pid" 2>/dev/null) <&3 >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
"#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", SCRIPT, "lab-watchdog"])
        .arg(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Kill a master left over from an earlier run with this config_directory
/// (found by its exact command line), then wait for it to go.
fn stop_stale(config_dir: &Path, queue_dir: &Path) -> anyhow::Result<()> {
    let masters = find_processes(|_, args| {
        args.len() >= 3
            && args[0].ends_with("/master")
            && args[1] == "-c"
            && Path::new(&args[2]) == config_dir
    });
    kill_and_wait(&masters, "stale postfix master")?;
    // Children of a master that died without them (they live in the queue).
    kill_and_wait(&working_in(queue_dir), "stale postfix processes")
}

/// Pids of processes whose working directory is under `dir`, also once
/// lab::dir() wiped it (their cwd then reads "<dir> (deleted)").
pub(crate) fn working_in(dir: &Path) -> Vec<i32> {
    find_processes(|pid, _| {
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| {
            let cwd = cwd.to_string_lossy();
            Path::new(cwd.strip_suffix(" (deleted)").unwrap_or(&cwd)).starts_with(dir)
        })
    })
}

/// Pids of processes (other than us) for which `matches(pid, argv)` holds.
pub(crate) fn find_processes(matches: impl Fn(i32, &[String]) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            matches(*pid, &args)
        })
        .collect()
}

/// SIGTERM each pid, wait (bounded) for them to vanish, SIGKILL stragglers.
pub(crate) fn kill_and_wait(pids: &[i32], what: &str) -> anyhow::Result<()> {
    if pids.is_empty() {
        return Ok(());
    }
    for &pid in pids {
        // SAFETY: kill(2) with a pid we just read from /proc.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let alive = |pid: &i32| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pids.iter().any(alive) {
        if std::time::Instant::now() > deadline {
            for pid in pids.iter().filter(|p| alive(p)) {
                // SAFETY: as above.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(200));
            if pids.iter().any(alive) {
                bail!("{what} (pids {pids:?}) does not die");
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// How long a test process waits for another one to release the lab's ports.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// Make this process the only one on this machine running lab MTAs: an
/// exclusive `flock` on a fixed file in the temp dir, held (in a static)
/// until the process ends. Two processes each checking "port free" and then
/// starting would race; Postfix's SO_REUSEPORT would even let both listen.
pub(crate) fn claim_mta_ports() -> anyhow::Result<()> {
    use std::io::{Read as _, Seek as _, Write as _};
    use std::os::fd::AsRawFd as _;
    use std::sync::{Mutex, OnceLock};

    static CLAIM: OnceLock<Mutex<Option<std::fs::File>>> = OnceLock::new();
    let claim = CLAIM.get_or_init(|| Mutex::new(None));
    let mut held = claim
        .lock()
        .map_err(|_| anyhow::anyhow!("lab port claim poisoned"))?;
    if held.is_some() {
        return Ok(());
    }
    let path = std::env::temp_dir().join("mxscope-lab-mta.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = std::time::Instant::now() + CLAIM_TIMEOUT;
    loop {
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            bail!(
                "another test process (pid {}) runs the lab's MTAs (lock {}); \
                 run lab tests one process at a time",
                owner.trim(),
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    *held = Some(file);
    Ok(())
}

/// Fail if something still accepts on one of `addrs` after a grace period
/// (the lab of a test process that just ended takes a moment to go).
pub(crate) fn refuse_if_taken(addrs: &[std::net::SocketAddr]) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let taken: Vec<_> = addrs
            .iter()
            .filter(|a| std::net::TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok())
            .collect();
        if taken.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "something else listens on {taken:?}: a system MTA, or a lab started \
                 outside this harness (run tests/lab/install.sh; `ss -ltnp 'sport = :25'`)"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Poll until every address accepts TCP, `gone` says the daemon died, or
/// `timeout` passes.
pub(crate) fn wait_accepting(
    addrs: &[std::net::SocketAddr],
    timeout: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pending: Vec<_> = addrs.to_vec();
    loop {
        pending.retain(|addr| {
            std::net::TcpStream::connect_timeout(addr, Duration::from_millis(500)).is_err()
        });
        if pending.is_empty() {
            return Ok(());
        }
        if let Some(why) = gone() {
            bail!("{why}; not accepting: {pending:?}");
        }
        if std::time::Instant::now() > deadline {
            bail!("still not accepting after {timeout:?}: {pending:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `lines` lines of a log file (or why it cannot be read).
pub(crate) fn tail(file: &Path, lines: usize) -> String {
    match std::fs::read(file) {
        Ok(raw) => {
            let text = String::from_utf8_lossy(&raw);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({}: {e})", file.display()),
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
