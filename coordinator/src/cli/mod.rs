//! The `mxscope` subcommands.

pub(crate) mod exclude;
pub(crate) mod export;
pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod submit;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mxscope_common::exclusions::Exclusions;
use mxscope_coordinator::grpc::client::{AdminClient, ClientTls};
use mxscope_coordinator::model::ScanOptions;
use mxscope_coordinator::service::{Coordinator, CoordinatorConfig};
use mxscope_coordinator::store::{Store, READER_CACHE_BYTES};

pub(crate) use mxscope_common::units::parse_duration;

use crate::{ConnectArgs, ProbeArgs, SourceArgs};

/// Longest line read from a domain list before it is cut (and rejected).
const MAX_LINE: u64 = 4096;

/// `key=value`.
pub(crate) fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE (e.g. country=IT)"))?;
    if key.trim().is_empty() {
        return Err(format!("{text:?} has an empty key"));
    }
    Ok((key.trim().to_string(), value.trim().to_string()))
}

/// The lines of a domain list file, or of standard input for `-`.
pub(crate) fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening domain list {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut reader = reader;
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && n as u64 == MAX_LINE {
            // Keep the overlong line's start: the coordinator rejects it with
            // its number. Skip the rest of it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut rest)?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            buf.extend(std::iter::repeat_n(b'x', 2048));
        }
        let line = String::from_utf8_lossy(&buf);
        lines.push(line.trim_end_matches(['\n', '\r']).to_string());
    }
    Ok(lines)
}

/// A secret from a file, else from an environment variable.
pub(crate) fn read_secret(file: Option<&Path>, env: &str) -> anyhow::Result<Option<String>> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading token file {}", file.display()))?;
        let token = text.trim().to_string();
        if token.is_empty() {
            bail!("token file {} is empty", file.display());
        }
        return Ok(Some(token));
    }
    Ok(std::env::var(env)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Read a PEM file whole.
pub(crate) fn read_pem(path: Option<&PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    path.map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

/// An admin connection to `url` with the command line's token and TLS files.
pub(crate) async fn connect(url: &str, args: &ConnectArgs) -> anyhow::Result<AdminClient> {
    let token = read_secret(args.token_file.as_deref(), "MXSCOPE_TOKEN")?;
    let identity = match (
        read_pem(args.client_cert.as_ref())?,
        read_pem(args.client_key.as_ref())?,
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    let tls = ClientTls {
        ca_pem: read_pem(args.coordinator_ca.as_ref())?,
        identity,
    };
    Ok(AdminClient::connect_with(url, token.as_deref(), &tls).await?)
}

/// The scan options of the command line.
pub(crate) fn options(args: &ProbeArgs) -> anyhow::Result<ScanOptions> {
    let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let ca_pem = match &args.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading CA file {}", path.display()))?,
        ),
        None => None,
    };
    let trust_anchor_pem = match &args.trust_anchor {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading trust anchor {}", path.display()))?,
        ),
        None => None,
    };
    Ok(ScanOptions {
        ehlo_name: args.ehlo_name.to_string(),
        port: args.port,
        legacy: args.legacy,
        timeout_connect_ms: ms(args.timeout_connect),
        timeout_greeting_ms: ms(args.timeout_greeting),
        timeout_command_ms: ms(args.timeout_command),
        timeout_handshake_ms: ms(args.timeout_handshake),
        timeout_session_ms: ms(args.timeout_session),
        resolvers: args.resolvers.iter().map(ToString::to_string).collect(),
        ca_pem,
        allow_private: args.allow_private,
        security: args.security,
        trust_anchor_pem,
        exclusions: match &args.exclude {
            Some(path) => read_exclusions(path)?.to_lines(),
            None => Vec::new(),
        },
        retry_attempts: args.retry_attempts,
        retry_delay_ms: ms(args.retry_delay),
        ip_gap_ms: Some(ms(args.ip_gap)),
        network_rate_milli: Some(milli(args.network_rate)),
        vantage_rate_milli: milli(args.vantage_rate),
    })
}

/// Sessions per second in thousandths (what the options carry).
fn milli(rate: f64) -> u32 {
    (rate * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A rate in sessions per second: 0 (no limit) or 0.001 to 1,000,000.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of sessions per second"))?;
    if rate == 0.0 || (0.001..=1_000_000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{text}: a rate is 0 (no limit) or 0.001 to 1000000 per second"
        ))
    }
}

/// An exclusion list file; a bad line is an error naming the file, the line
/// and the reason.
pub(crate) fn read_exclusions(path: &Path) -> anyhow::Result<Exclusions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading exclusion list {}", path.display()))?;
    Exclusions::parse(&text).map_err(|e| anyhow::anyhow!("exclusion list {}: {e}", path.display()))
}

/// Scans, read from a coordinator or from a data directory.
pub(crate) enum Source {
    Remote(AdminClient),
    Local(Box<Coordinator>),
}

/// Open the source the options name.
pub(crate) async fn open_source(args: &SourceArgs) -> anyhow::Result<Source> {
    match (&args.coordinator, &args.data_dir) {
        (Some(url), _) => Ok(Source::Remote(connect(url, &args.connect).await?)),
        (None, Some(dir)) => Ok(Source::Local(Box::new(open_local(dir)?))),
        (None, None) => {
            bail!(
                "say where the scans are: --coordinator URL, or --data-dir DIR to read one offline"
            )
        }
    }
}

/// Open a data directory offline.
pub(crate) fn open_local(dir: &Path) -> anyhow::Result<Coordinator> {
    if !dir.exists() {
        bail!("data directory {} does not exist", dir.display());
    }
    let store = Store::open_with_cache(dir, READER_CACHE_BYTES).with_context(|| {
        format!(
            "opening {} (if a coordinator runs on it, use --coordinator URL instead)",
            dir.display()
        )
    })?;
    Ok(Coordinator::open(store, CoordinatorConfig::default())?)
}
