//! `--tls-depth vulns`: the intrusive checks, one session each, only on a
//! version the server speaks before TLS 1.3 (intrusive: documented as such,
//! opt-in). Whatever a server sends back is looked at for its record type
//! and discarded: never stored, never logged.
//!
//! - Heartbleed (CVE-2014-0160): a hello offering the heartbeat extension;
//!   when the server accepts it, after its first flight one heartbeat
//!   request claiming 16 KiB of payload and carrying none. A heartbeat
//!   response is a leak: vulnerable.
//! - CCS injection (CVE-2014-0224): after the server's first flight, a
//!   ChangeCipherSpec before any key exchange. A fixed server answers
//!   `unexpected_message` (or closes); one that stays silent until the
//!   wait ends accepted it: vulnerable.

use std::time::Duration;

use mxscope_common::Tested;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::catalog::DepthVersion;
use super::hello::{self, Hello};
use super::reply::{self, Reply};
use crate::tls::exchange::send_and_read;
use crate::tls::first_flight::{self, Flight, MAX_FLIGHT_BYTES};
use crate::tls::legacy::LegacyVersion;

/// An intrusive check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Heartbleed,
    CcsInjection,
}

/// Most bytes read after the probe record: the verdict is the first
/// record's type.
const MAX_AFTER: usize = 4096;
/// How long a server may take to refuse the early ChangeCipherSpec.
const CCS_WAIT: Duration = Duration::from_secs(2);

/// Run `check` on a stream just past STARTTLS's 220, speaking `version`,
/// within `timeout`. `Yes` = vulnerable.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    check: Check,
    version: LegacyVersion,
    suites: &[u16],
    sni: Option<&str>,
    timeout: Duration,
) -> Tested {
    let deadline = Instant::now() + timeout;
    let hello = hello::client_hello(&Hello {
        version: DepthVersion::Legacy(version),
        suites,
        sni,
        fallback: false,
        groups: None,
        heartbeat: check == Check::Heartbleed,
    });
    // The first flight, and whether the ServerHello accepted heartbeats.
    let flight = send_and_read(stream, &hello, deadline, MAX_FLIGHT_BYTES, 16 * 1024, |r| {
        match first_flight::parse(r) {
            Flight::Incomplete => None,
            Flight::Done(Ok(_)) => Some(Ok(heartbeat_accepted(version, suites, r))),
            Flight::Done(Err(e)) => Some(Err(e)),
        }
    })
    .await;
    // No handshake to attack on this version: nothing to say.
    let Ok(Ok(heartbeat)) = flight else {
        return Tested::Error;
    };
    let wire = version.wire().to_be_bytes();
    let probe = match check {
        Check::Heartbleed if !heartbeat => return Tested::No,
        // heartbeat_request, payload_length 16384, no payload at all.
        Check::Heartbleed => vec![0x18, wire[0], wire[1], 0, 3, 1, 0x40, 0x00],
        Check::CcsInjection => vec![0x14, wire[0], wire[1], 0, 1, 1],
    };
    let write = async {
        stream.write_all(&probe).await?;
        stream.flush().await
    };
    if !matches!(tokio::time::timeout_at(deadline, write).await, Ok(Ok(()))) {
        return Tested::Error;
    }
    let wait = match check {
        Check::Heartbleed => deadline,
        // Silence is the verdict: it must be the whole wait, or nothing.
        Check::CcsInjection if deadline < Instant::now() + CCS_WAIT => return Tested::Error,
        Check::CcsInjection => Instant::now() + CCS_WAIT,
    };
    match (check, first_record_type(stream, wait).await) {
        (Check::Heartbleed, Some(0x18)) => Tested::Yes,
        (Check::Heartbleed, _) => Tested::No,
        // Silence until the wait ended: the early CCS was taken.
        (Check::CcsInjection, None) => Tested::Yes,
        (Check::CcsInjection, Some(_)) => Tested::No,
    }
}

/// Whether the ServerHello in `received` carries the heartbeat extension.
fn heartbeat_accepted(version: LegacyVersion, suites: &[u16], received: &[u8]) -> bool {
    matches!(
        reply::read(DepthVersion::Legacy(version), suites, received),
        Some(Reply::Picked(pick)) if pick.heartbeat
    )
}

/// The type of the first record the server sends after the probe record,
/// `Some(0)` when it closed, `None` when nothing came before `until`. The
/// bytes are dropped here, read or not.
async fn first_record_type<S: AsyncRead + Unpin>(stream: &mut S, until: Instant) -> Option<u8> {
    let mut buf = vec![0u8; MAX_AFTER.min(4096)];
    match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(0),
        Ok(Ok(n)) => buf.get(..n).and_then(|b| b.first()).copied(),
        Err(_) => None,
    }
}
