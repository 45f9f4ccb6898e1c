//! The flag groups both command lines share (`#[command(flatten)]`), so a
//! flag is defined, parsed and defaulted once: [`ProbeArgs`] (how a probe
//! is made: `mxscope-worker probe`, `mxscope scan`, `mxscope submit`),
//! [`CoordinatorArgs`] (`--coordinator URL` and the [`ConnectArgs`], token
//! and TLS files of a coordinator client: `mxscope-worker work` and every
//! `mxscope` command that talks to a coordinator), [`SlotArgs`] (a fleet
//! worker's sessions and resolutions at once: `mxscope-worker work` and the
//! embedded worker of `mxscope scan`), [`read_secret`] (every
//! token), [`parse_resolver`] (every `--resolver`) and
//! [`shutdown_on_signals`] / [`on_hangup`] (every long-running command).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::options::{defaults, millis, ScanOptions, Timeouts};
use crate::units::parse_duration;
use crate::wire::client::ClientTls;
use crate::{DepthLevel, EhloName};

/// A flag's file or secret that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// A file named by a flag cannot be read; check the path.
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A secret is empty (a blank file, or a variable set to nothing); put
    /// the secret in it, or unset the variable.
    #[error("the token in {0} is empty")]
    EmptySecret(String),
    /// A secret is not UTF-8 text.
    #[error("the token in {0} is not UTF-8")]
    NotText(String),
    /// No `--coordinator` where one is needed; give its URL.
    #[error("say where the coordinator is: --coordinator URL")]
    NoCoordinator,
}

/// SMTP sessions a fleet worker runs at once, unless told otherwise.
pub const DEFAULT_CONCURRENCY: u32 = 64;
/// Domain resolutions at once, unless told otherwise: as many as sessions,
/// within these bounds.
pub const DNS_CONCURRENCY_RANGE: (u32, u32) = (256, 1024);

/// What a fleet worker runs at once: its two kinds of slots.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SlotArgs {
    /// Most SMTP sessions at once, across all tasks (the session slots). Each
    /// finished target frees its slot at once. The open-file limit is raised
    /// to fit, or the worker says (and uses) what it can reach.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub concurrency: u32,
    /// Most domain resolutions at once (MX, the exchanges' addresses and,
    /// with --security, the domain's checks), counted apart from the
    /// sessions: probe work is planned from resolved domains, so resolving
    /// never waits behind busy sessions. Default: --concurrency, at least
    /// 256 and at most 1024. Raise it when the sessions wait for targets
    /// (mxscope_worker_resolutions_in_flight stays at this bound).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub dns_concurrency: Option<u32>,
}

impl SlotArgs {
    pub fn sessions(&self) -> usize {
        self.concurrency as usize
    }

    pub fn resolutions(&self) -> usize {
        self.dns_concurrency
            .unwrap_or_else(|| default_dns_concurrency(self.concurrency)) as usize
    }
}

/// The resolutions at once of a worker of `sessions` sessions, unless told otherwise.
pub fn default_dns_concurrency(sessions: u32) -> u32 {
    sessions.clamp(DNS_CONCURRENCY_RANGE.0, DNS_CONCURRENCY_RANGE.1)
}

/// How probes are made (for `mxscope scan` and `submit`, carried by the
/// scan to every worker).
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Name sent in EHLO: identify your scanner with a name that leads to a contact.
    #[arg(long, value_name = "NAME", default_value_t = EhloName::from_hostname())]
    pub ehlo_name: EhloName,
    /// SMTP port to connect to.
    #[arg(long, default_value_t = defaults::PORT)]
    pub port: u16,
    /// Also test SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 support, one extra session each.
    #[arg(long)]
    pub legacy: bool,
    /// How deep to look at each server's TLS, paid in extra sessions per IP
    /// (each waits for the per-IP gap): `free` (default) records what the
    /// sessions already opened show; `classes` adds which classes of suite
    /// each supported version accepts (NULL, anonymous, EXPORT, RC4,
    /// 64-bit block, CBC, no forward secrecy, AEAD: about one session per
    /// accepted class), the fallback SCSV and an SSLv2 hello; `suites` lists
    /// every accepted suite per version with the server's preference
    /// (about one session per accepted suite, plus the groups); `vulns` is
    /// `classes` plus the intrusive checks, Heartbleed and CCS injection (one
    /// session each) and ROBOT (5 sessions, 10 when the answers differ; 1
    /// without RSA key exchange): run it only where you may test. All imply
    /// --legacy.
    #[arg(long, value_name = "LEVEL", default_value_t = DepthLevel::Free)]
    pub tls_depth: DepthLevel,
    /// Most extra sessions per IP that --tls-depth may open; a host over it
    /// says in its record which facts were not measured.
    #[arg(long, value_name = "N", default_value_t = defaults::TLS_DEPTH_BUDGET,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tls_depth_budget: u32,
    /// DNS server to ask (IP:PORT, or IP for port 53); may be repeated.
    /// Default: the system configuration (of each worker, for a scan).
    #[arg(long = "resolver", value_name = "IP:PORT", value_parser = parse_resolver)]
    pub resolvers: Vec<SocketAddr>,
    /// Verify certificates against this PEM bundle instead of Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Also probe loopback, private and other non-public addresses (labs). Without it
    /// such MX addresses are recorded as `skipped`, so a domain cannot point the scanner
    /// at its own network.
    #[arg(long)]
    pub allow_private: bool,
    /// Also check DNSSEC (MX and exchanges), DANE per MX, reverse DNS per IP,
    /// MTA-STS and TLS-RPT per domain (through the same --resolver servers).
    #[arg(long)]
    pub security: bool,
    /// DNSSEC trust anchor: a file of DNSKEY records in zone-file format
    /// (`. 3600 IN DNSKEY 257 3 13 <base64>`). Default: the IANA root.
    #[arg(long, value_name = "FILE", requires = "security")]
    pub trust_anchor: Option<PathBuf>,
    /// A name known to be DNSSEC-signed under the trust anchor: the resolver
    /// self-check (once per scan and worker) also asks for it and expects
    /// RRSIGs back (it always asks for the anchor's DNSKEY).
    #[arg(long, value_name = "NAME", requires = "security", value_parser = parse_domain_name)]
    pub dnssec_check_name: Option<String>,
    /// Connect timeout (e.g. 10s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::TIMEOUT_CONNECT), value_parser = parse_duration)]
    pub timeout_connect: Duration,
    /// Wait for the greeting.
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::TIMEOUT_GREETING), value_parser = parse_duration)]
    pub timeout_greeting: Duration,
    /// Wait for each command's reply.
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::TIMEOUT_COMMAND), value_parser = parse_duration)]
    pub timeout_command: Duration,
    /// TLS handshake timeout.
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::TIMEOUT_HANDSHAKE), value_parser = parse_duration)]
    pub timeout_handshake: Duration,
    /// Absolute limit on one SMTP session, whatever the phases say.
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::TIMEOUT_SESSION), value_parser = parse_duration)]
    pub timeout_session: Duration,
    /// Timeout of one DNS query attempt (lost datagrams are sent again
    /// within it; two attempts).
    #[arg(long, value_name = "DURATION", default_value = defaults::text(defaults::TIMEOUT_DNS), value_parser = parse_duration)]
    pub timeout_dns: Duration,
}

impl ProbeArgs {
    /// The five session timeouts.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.timeout_connect,
            greeting: self.timeout_greeting,
            command: self.timeout_command,
            handshake: self.timeout_handshake,
            session: self.timeout_session,
        }
    }

    /// The scan options these flags say (the files read); the scan-level
    /// settings (exclusions, retries, pacing) are the caller's to add.
    pub fn scan_options(&self) -> Result<ScanOptions, ArgsError> {
        Ok(ScanOptions {
            ehlo_name: self.ehlo_name.to_string(),
            port: self.port,
            legacy: self.legacy,
            tls_depth: self.tls_depth,
            tls_depth_budget: self.tls_depth_budget,
            timeout_connect_ms: millis(self.timeout_connect),
            timeout_greeting_ms: millis(self.timeout_greeting),
            timeout_command_ms: millis(self.timeout_command),
            timeout_handshake_ms: millis(self.timeout_handshake),
            timeout_session_ms: millis(self.timeout_session),
            timeout_dns_ms: millis(self.timeout_dns),
            resolvers: self.resolvers.iter().map(ToString::to_string).collect(),
            ca_pem: read_text("CA file", self.ca_file.as_deref())?,
            allow_private: self.allow_private,
            security: self.security,
            trust_anchor_pem: read_text("trust anchor", self.trust_anchor.as_deref())?,
            dnssec_check_name: self.dnssec_check_name.clone(),
            ..ScanOptions::default()
        })
    }
}

/// A coordinator to talk to: its URL and the token and TLS files of the
/// connection. The one definition of `--coordinator`: optional as declared
/// here (the `mxscope` commands that can read a data directory instead make
/// it exclusive with `--data-dir`), required by the commands that need a
/// running coordinator, which say so with
/// `#[command(mut_arg(COORDINATOR, required))]`.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordinatorArgs {
    /// URL of the coordinator's gRPC service: http://HOST:PORT, or
    /// https://HOST:PORT for TLS.
    #[arg(long, value_name = "URL")]
    pub coordinator: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The id of `--coordinator` (for `mut_arg` and `conflicts_with`).
pub const COORDINATOR: &str = "coordinator";

/// Make an argument required: `#[command(mut_arg(COORDINATOR, required))]`
/// on the commands that cannot run without a coordinator.
pub fn required(arg: clap::Arg) -> clap::Arg {
    arg.required(true)
}

impl CoordinatorArgs {
    /// The coordinator's URL; [`ArgsError::NoCoordinator`] when none was given.
    pub fn url(&self) -> Result<&str, ArgsError> {
        self.coordinator.as_deref().ok_or(ArgsError::NoCoordinator)
    }
}

/// The token and TLS files of a client of the coordinator.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Read the bearer token from this file (else from the MXSCOPE_TOKEN
    /// environment variable; an empty one is refused).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust this PEM bundle for an https:// coordinator instead of Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    pub coordinator_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a coordinator that requires mutual TLS; needs --client-key.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Where a client's token comes from when no file is named.
pub const TOKEN_VARIABLE: &str = "MXSCOPE_TOKEN";

impl ConnectArgs {
    /// The bearer token: `--token-file`, else `MXSCOPE_TOKEN`, else none.
    pub fn token(&self) -> Result<Option<String>, ArgsError> {
        read_secret(self.token_file.as_deref(), TOKEN_VARIABLE)
    }

    /// The TLS files, read.
    pub fn tls(&self) -> Result<ClientTls, ArgsError> {
        let identity = match (
            read_bytes("client certificate", self.client_cert.as_deref())?,
            read_bytes("client key", self.client_key.as_deref())?,
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        };
        Ok(ClientTls {
            ca_pem: read_bytes("coordinator CA", self.coordinator_ca.as_deref())?,
            identity,
        })
    }
}

/// A secret from `file`, else from the variable `env`, else none; trimmed.
/// An empty file, or a variable set to nothing, is an error: a token that
/// was meant to be there and is not must not turn into "no token".
pub fn read_secret(file: Option<&Path>, env: &str) -> Result<Option<String>, ArgsError> {
    let (text, source) = match file {
        Some(path) => {
            let bytes = read_bytes("token file", Some(path))?.unwrap_or_default();
            let source = path.display().to_string();
            let text = String::from_utf8(bytes).map_err(|_| ArgsError::NotText(source.clone()))?;
            (text, source)
        }
        None => match std::env::var(env) {
            Ok(text) => (text, env.to_string()),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ArgsError::NotText(env.to_string()))
            }
        },
    };
    match text.trim() {
        "" => Err(ArgsError::EmptySecret(source)),
        token => Ok(Some(token.to_string())),
    }
}

fn read_bytes(what: &'static str, path: Option<&Path>) -> Result<Option<Vec<u8>>, ArgsError> {
    path.map(|path| {
        std::fs::read(path).map_err(|source| ArgsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
    })
    .transpose()
}

fn read_text(what: &'static str, path: Option<&Path>) -> Result<Option<String>, ArgsError> {
    path.map(|path| {
        std::fs::read_to_string(path).map_err(|source| ArgsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
    })
    .transpose()
}

/// `IP:PORT`, or `IP` for port 53: every `--resolver`.
pub fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not IP:PORT or IP (e.g. 127.0.0.1:5353, [::1]:53)"))
}

/// A domain name flag, normalised (A-label, no trailing dot).
pub fn parse_domain_name(text: &str) -> Result<String, String> {
    crate::DomainName::parse(text).map(|name| name.as_str().to_string())
}

/// The process's signal handling: the first SIGINT or SIGTERM cancels
/// `shutdown` (a graceful stop), the second exits at once (status 130).
/// Call it inside the runtime.
pub fn shutdown_on_signals(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        for round in 0..2 {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            if round == 0 {
                tracing::info!(
                    signal = name,
                    "shutting down (send it again to exit at once)"
                );
                shutdown.cancel();
            } else {
                tracing::warn!(signal = name, "exiting at once");
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// Call `reload` at every SIGHUP (the reload hook of a command that has
/// something to reload). Call it inside the runtime.
pub fn on_hangup(mut reload: impl FnMut() + Send + 'static) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            reload();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        probe: ProbeArgs,
        #[command(flatten)]
        connect: ConnectArgs,
    }

    #[test]
    fn resolvers_parse_with_and_without_a_port() {
        assert_eq!(
            parse_resolver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(parse_resolver("::1"), Ok("[::1]:53".parse().unwrap()));
        assert!(parse_resolver("dns.example").is_err());
        let cli = Cli::try_parse_from(["x", "--resolver", "127.0.0.1", "--resolver", "[::1]:5353"])
            .unwrap();
        assert_eq!(
            cli.probe.resolvers,
            [
                "127.0.0.1:53".parse().unwrap(),
                "[::1]:5353".parse::<SocketAddr>().unwrap()
            ]
        );
    }

    #[derive(Debug, Parser)]
    struct Worker {
        #[command(flatten)]
        slots: SlotArgs,
    }

    #[test]
    fn resolutions_follow_sessions_within_bounds_unless_given() {
        let slots = |args: &[&str]| {
            let mut argv = vec!["x"];
            argv.extend_from_slice(args);
            let w = Worker::try_parse_from(argv).unwrap();
            (w.slots.sessions(), w.slots.resolutions())
        };
        assert_eq!(slots(&[]), (64, 256));
        assert_eq!(slots(&["--concurrency", "700"]), (700, 700));
        assert_eq!(slots(&["--concurrency", "5000"]), (5000, 1024));
        assert_eq!(
            slots(&["--concurrency", "5000", "--dns-concurrency", "4000"]),
            (5000, 4000)
        );
        for bad in ["0", "-1", "many"] {
            assert!(
                Worker::try_parse_from(["x", "--dns-concurrency", bad]).is_err(),
                "{bad}"
            );
            assert!(
                Worker::try_parse_from(["x", "--concurrency", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_come_from_the_options() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.probe.timeouts(), Timeouts::default());
        assert_eq!(cli.probe.port, defaults::PORT);
        let options = cli.probe.scan_options().unwrap();
        assert_eq!(options.timeouts(), Timeouts::default());
        assert_eq!(options.ehlo_name, EhloName::from_hostname().to_string());
        assert!(Cli::try_parse_from(["x", "--trust-anchor", "a"]).is_err());
        assert!(Cli::try_parse_from(["x", "--dnssec-check-name", "sec.test"]).is_err());
        let checked =
            Cli::try_parse_from(["x", "--security", "--dnssec-check-name", "sec.test"]).unwrap();
        let options = checked.probe.scan_options().unwrap();
        assert_eq!(options.dnssec_check_name.as_deref(), Some("sec.test"));
        let bad = ["x", "--security", "--dnssec-check-name", "not a name"];
        assert!(Cli::try_parse_from(bad).is_err());
        assert!(Cli::try_parse_from(["x", "--client-cert", "c.pem"]).is_err());
    }

    #[test]
    fn secrets_are_never_empty() {
        let dir = std::env::temp_dir().join(format!("mxscope-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(
            read_secret(Some(&path), "MXSCOPE_TEST_UNSET")
                .unwrap()
                .as_deref(),
            Some("s3cret")
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_secret(Some(&path), "MXSCOPE_TEST_UNSET"),
            Err(ArgsError::EmptySecret(_))
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            read_secret(Some(&path), "MXSCOPE_TEST_UNSET"),
            Err(ArgsError::Read { .. })
        ));
        assert!(read_secret(None, "MXSCOPE_TEST_UNSET_VARIABLE")
            .unwrap()
            .is_none());
        // A variable set to nothing: one process-wide name no other test uses.
        std::env::set_var("MXSCOPE_TEST_EMPTY_SECRET", " ");
        let error = read_secret(None, "MXSCOPE_TEST_EMPTY_SECRET").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the token in MXSCOPE_TEST_EMPTY_SECRET is empty"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
