//! The thin driver of one depth step on one stream: the hello of the step,
//! read through the one hello-and-read driver until its reader decides.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::catalog::DepthVersion;
use super::hello::{self, Hello};
use super::reply::{self, Reply};
use super::{robot, vulns, Answer, Step, MAX_ANSWER_BYTES};
use crate::tls::exchange::{send_and_read, ReadEnd};

/// Send the hello of `step` (for `version`) on a stream just past
/// STARTTLS's 220 and read its answer, within `timeout`. A close or reset
/// before any byte is a refusal. The stream is left mid-handshake: drop it.
pub async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    step: &Step,
    version: Option<DepthVersion>,
    sni: Option<&str>,
    timeout: Duration,
) -> Answer {
    let deadline = Instant::now() + timeout;
    let result = match (step, version) {
        (
            Step::Vuln {
                check,
                version,
                suites,
            },
            _,
        ) => {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let verdict = vulns::run(stream, *check, *version, suites, sni, remaining).await;
            return Answer::Vuln(verdict);
        }
        (Step::Robot { payload, version }, _) => {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome = robot::run(stream, *payload, *version, sni, remaining).await;
            return Answer::Robot(outcome);
        }
        (Step::Dhe { version, suites }, _) => {
            let bytes = hello::client_hello(&Hello {
                version: DepthVersion::Legacy(*version),
                suites,
                sni,
                fallback: false,
                groups: None,
                heartbeat: false,
            });
            let max = crate::tls::first_flight::MAX_FLIGHT_BYTES;
            send_and_read(stream, &bytes, deadline, max, 16 * 1024, |r| {
                dh_reply(r, suites)
            })
            .await
        }
        (Step::Sslv2, _) => {
            let bytes = hello::sslv2_client_hello();
            send_and_read(stream, &bytes, deadline, MAX_ANSWER_BYTES, 4096, |r| {
                reply::read_sslv2(r).map(Answer::Sslv2)
            })
            .await
        }
        (
            Step::Groups {
                version: DepthVersion::Legacy(legacy),
                suites,
                groups,
                ..
            },
            _,
        ) => {
            // Before TLS 1.3 the curve is in the ServerKeyExchange: read the
            // first flight.
            let bytes = hello::client_hello(&Hello {
                version: DepthVersion::Legacy(*legacy),
                suites,
                sni,
                fallback: false,
                groups: Some(groups),
                heartbeat: false,
            });
            let max = crate::tls::first_flight::MAX_FLIGHT_BYTES;
            send_and_read(stream, &bytes, deadline, max, 16 * 1024, |r| {
                curve_reply(r).map(Answer::Tls)
            })
            .await
        }
        (
            Step::Groups {
                version,
                suites,
                groups,
                ..
            },
            _,
        ) => {
            let bytes = hello::client_hello(&Hello {
                version: *version,
                suites,
                sni,
                fallback: false,
                groups: Some(groups),
                heartbeat: false,
            });
            let version = *version;
            send_and_read(stream, &bytes, deadline, MAX_ANSWER_BYTES, 4096, |r| {
                reply::read(version, suites, r).map(Answer::Tls)
            })
            .await
        }
        (Step::Version { offered, .. } | Step::Fallback { offered, .. }, Some(version)) => {
            let bytes = hello::client_hello(&Hello {
                version,
                suites: offered,
                sni,
                fallback: matches!(step, Step::Fallback { .. }),
                groups: None,
                heartbeat: false,
            });
            send_and_read(stream, &bytes, deadline, MAX_ANSWER_BYTES, 4096, |r| {
                reply::read(version, offered, r).map(Answer::Tls)
            })
            .await
        }
        (_, None) => return Answer::Failed("no version for the hello".into()),
    };
    match result {
        Ok(answer) => answer,
        Err(end) if end.is_reset_before_answer() => refused(step, "connection reset"),
        Err(ReadEnd::Closed { after: 0 }) => refused(step, "connection closed"),
        Err(ReadEnd::Timeout) => Answer::Failed("timeout".into()),
        Err(ReadEnd::WriteFailed(e)) => Answer::Failed(format!("write failed: {e}")),
        Err(ReadEnd::ReadFailed { error, .. }) => Answer::Failed(format!("read failed: {error}")),
        Err(ReadEnd::Closed { after }) => {
            Answer::Failed(format!("connection closed after {after} bytes, mid-answer"))
        }
        Err(ReadEnd::Full { .. }) => Answer::Failed("answer buffer full".into()),
    }
}

/// A TLS 1.2 first flight as a group reply: the curve of its
/// ServerKeyExchange, a refusal on an alert.
fn curve_reply(received: &[u8]) -> Option<Reply> {
    use crate::tls::first_flight::{parse, Flight};
    use mxscope_common::HandshakeFailure;
    match parse(received) {
        Flight::Incomplete => None,
        Flight::Done(Ok(flight)) => Some(Reply::Picked(reply::Pick {
            version: flight.version,
            cipher: flight.cipher,
            compression: 0,
            renegotiation_info: false,
            extended_master_secret: false,
            retry_request: false,
            group: flight.group,
            heartbeat: false,
        })),
        Flight::Done(Err(e)) if e.kind == HandshakeFailure::AlertReceived => {
            Some(Reply::Refused(e.detail))
        }
        Flight::Done(Err(e)) => Some(Reply::Error(e.detail)),
    }
}

/// A first flight as the DHE hello's answer: the prime of its
/// ServerKeyExchange when an offered suite was picked.
fn dh_reply(received: &[u8], offered: &[u16]) -> Option<Answer> {
    use crate::tls::first_flight::{parse, Flight};
    match parse(received) {
        Flight::Incomplete => None,
        Flight::Done(Ok(flight)) if offered.contains(&flight.cipher) => {
            Some(match flight.dh_bits {
                Some(bits) => Answer::Dh {
                    bits,
                    group: flight.dh_group,
                },
                None => Answer::Failed("no DH parameters in the first flight".into()),
            })
        }
        Flight::Done(Ok(_)) => Some(Answer::Failed("a suite not offered".into())),
        Flight::Done(Err(e)) => Some(Answer::Tls(Reply::Refused(e.detail))),
    }
}

fn refused(step: &Step, detail: &str) -> Answer {
    match step {
        Step::Sslv2 => Answer::Sslv2(false),
        _ => Answer::Tls(Reply::Refused(detail.into())),
    }
}
