//! `mxscope-worker`: measure the mail exchangers of domains from this machine.

use std::io::{BufReader, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use mxscope_common::{parse_domain_list, DomainName, DomainRecord};
use mxscope_worker::config::{default_ehlo_name, ProbeConfig, Timeouts};
use mxscope_worker::dns::{DnsConfig, MxResolver};
use mxscope_worker::probe::{Prober, Progress};
use mxscope_worker::tls::TlsContext;

#[derive(Debug, Parser)]
#[command(
    name = "mxscope-worker",
    version,
    about = "Measure how the mail exchangers of domains protect mail in transit",
    long_about = "Measure how the mail exchangers (MX) of domains protect mail in transit: \
                  resolve each domain's MX, open one SMTP session per MX address, try \
                  STARTTLS and record the TLS version, cipher, certificate chain and its \
                  verification. No mail is ever sent: the session ends with QUIT."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Probe the MX hosts of one or more domains and print one record per domain.
    #[command(after_help = "Examples:\n  \
        mxscope-worker probe example.org\n  \
        mxscope-worker probe --json --legacy -f domains.txt > records.jsonl\n  \
        cat domains.txt | mxscope-worker probe -\n\n\
        Exit status: 0 when every domain was measured (whatever the outcome), \
        2 for invalid input or options.")]
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// Domains to probe; `-` reads a list from standard input (one per line, `#` comments).
    domains: Vec<String>,
    /// Read domains from this file (one per line, `#` comments); may be repeated.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// DNS server to ask (IP:PORT, or IP for port 53); may be repeated. Default: the system configuration.
    #[arg(long = "resolver", value_name = "IP:PORT", value_parser = parse_resolver)]
    resolvers: Vec<SocketAddr>,
    /// Verify certificates against this PEM bundle instead of Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Name sent in EHLO: identify your scanner with a name that leads to a contact.
    #[arg(long, value_name = "NAME", default_value_t = default_ehlo_name())]
    ehlo_name: String,
    /// Source address to connect from (selects the vantage's network).
    #[arg(long, value_name = "SRC_ADDR")]
    bind: Option<IpAddr>,
    /// SMTP port to connect to.
    #[arg(long, default_value_t = 25)]
    port: u16,
    /// Also test SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 support, one extra session each.
    #[arg(long)]
    legacy: bool,
    /// Most DNS lookups and SMTP sessions at once (sessions to one IP are always sequential).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    concurrency: u16,
    /// Connect timeout (e.g. 10s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    timeout_connect: Duration,
    /// Wait for the greeting.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout_greeting: Duration,
    /// Wait for each command's reply.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout_command: Duration,
    /// TLS handshake timeout.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    timeout_handshake: Duration,
    /// Absolute limit on one SMTP session, whatever the phases say.
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration)]
    timeout_session: Duration,
    /// Timeout of one DNS query attempt.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    timeout_dns: Duration,
    /// Also probe loopback, private and other non-public addresses (labs). Without it
    /// such MX addresses are recorded as `skipped`, so a domain cannot point the scanner
    /// at its own network.
    #[arg(long)]
    allow_private: bool,
    /// Print JSON Lines (one domain record per line, targets embedded).
    #[arg(long)]
    json: bool,
    /// Skip invalid lines in domain lists (and report them) instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
}

fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not IP:PORT or IP (e.g. 127.0.0.1:5353, [::1]:53)"))
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s or m)"
            ))
        }
    };
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!("{text:?} must be above 0 and at most 1 hour"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MXSCOPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => probe(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mxscope-worker: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Gather the domains from arguments, files and stdin; all-or-nothing unless `skip_invalid`.
fn read_domains(args: &ProbeArgs) -> anyhow::Result<Vec<DomainName>> {
    let mut domains = Vec::new();
    let mut lists = Vec::new();
    for (index, arg) in args.domains.iter().enumerate() {
        if arg == "-" {
            let stdin = std::io::stdin().lock();
            lists.push((
                "standard input".to_string(),
                parse_domain_list(stdin, args.skip_invalid),
            ));
        } else {
            match DomainName::parse(arg) {
                Ok(name) => domains.push(name),
                Err(reason) if args.skip_invalid => {
                    eprintln!("skipped argument {}: {arg:?}: {reason}", index + 1)
                }
                Err(reason) => bail!("argument {:?}: {reason}", arg),
            }
        }
    }
    for path in &args.files {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening domain list {}", path.display()))?;
        lists.push((
            path.display().to_string(),
            parse_domain_list(BufReader::new(file), args.skip_invalid),
        ));
    }
    for (source, list) in lists {
        let list = list.with_context(|| format!("in {source}"))?;
        for invalid in &list.invalid {
            eprintln!("skipped {source} {invalid}");
        }
        domains.extend(list.domains);
    }
    let mut seen = std::collections::HashSet::new();
    domains.retain(|d| seen.insert(d.as_str().to_string()));
    if domains.is_empty() {
        bail!("no domains given: pass domains as arguments, -f FILE, or - for standard input");
    }
    Ok(domains)
}

fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    let domains = read_domains(&args)?;
    let tls = TlsContext::new(args.ca_file.as_deref())?;
    let config = ProbeConfig {
        ehlo_name: args.ehlo_name.clone(),
        bind: args.bind,
        port: args.port,
        timeouts: Timeouts {
            connect: args.timeout_connect,
            greeting: args.timeout_greeting,
            command: args.timeout_command,
            handshake: args.timeout_handshake,
            session: args.timeout_session,
        },
        legacy: args.legacy,
        ca_file: args.ca_file.clone(),
        allow_private: args.allow_private,
        ..ProbeConfig::default()
    };
    let dns = DnsConfig {
        resolvers: args.resolvers.clone(),
        timeout: args.timeout_dns,
        ..DnsConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let records = runtime.block_on(async {
        let resolver = MxResolver::new(&dns)?;
        let prober = Prober::new(config, tls);
        let show_progress = std::io::stderr().is_terminal();
        let records = prober
            .probe_domains(&resolver, &domains, usize::from(args.concurrency), |p| {
                if show_progress {
                    let (what, done, total) = match p {
                        Progress::Resolved { done, total } => ("resolved", done, total),
                        Progress::Probed { done, total } => ("probed", done, total),
                    };
                    eprint!("\r{what} {done}/{total}   ");
                }
            })
            .await;
        if show_progress {
            eprint!("\r\x1b[K");
        }
        anyhow::Ok(records)
    })?;
    print_records(&records, args.json)
}

fn print_records(records: &[DomainRecord], json: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for record in records {
        if json {
            serde_json::to_writer(&mut out, record)?;
            writeln!(out)?;
        } else {
            mxscope_worker::summary::write_domain(&mut out, record)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn resolvers() {
        assert_eq!(
            parse_resolver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(parse_resolver("::1"), Ok("[::1]:53".parse().unwrap()));
        assert!(parse_resolver("dns.example").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
