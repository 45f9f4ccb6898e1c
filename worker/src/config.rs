//! Probe options: what the operator sets on the command line (and, later,
//! what a scan carries to its workers).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::smtp::reply::Limits;

/// Per-phase timeouts and the absolute session deadline (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    /// Each command's reply (EHLO, HELO, STARTTLS, QUIT).
    pub command: Duration,
    pub handshake: Duration,
    /// The whole session, whatever the phases say: a server that trickles
    /// bytes cannot hold a slot longer than this.
    pub session: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            greeting: Duration::from_secs(30),
            command: Duration::from_secs(30),
            handshake: Duration::from_secs(20),
            session: Duration::from_secs(90),
        }
    }
}

/// Everything one probe needs to know besides its target.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Name sent in EHLO/HELO: identify the scanner (DESIGN §8).
    pub ehlo_name: String,
    /// Source address to connect from (a vantage's address).
    pub bind: Option<IpAddr>,
    /// Destination port (25 in the wild; configurable for labs).
    pub port: u16,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// Also probe SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 in extra sessions.
    pub legacy: bool,
    /// Verify against this PEM bundle instead of Mozilla's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            ehlo_name: default_ehlo_name(),
            bind: None,
            port: 25,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            legacy: false,
            ca_file: None,
        }
    }
}

/// This machine's host name, or `localhost` when it cannot be read.
pub fn default_ehlo_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && name.len() <= 255)
        .unwrap_or_else(|| "localhost".to_string())
}
