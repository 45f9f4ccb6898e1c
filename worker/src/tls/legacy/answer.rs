//! What came back after a version probe's ClientHello: a ServerHello, an
//! alert, or something that is not TLS.

use mxscope_common::VersionSupport;
use tls_parser::nom::Err as NomErr;
use tls_parser::{
    parse_tls_handshake_server_hello, parse_tls_raw_record, TlsAlertDescription, TlsCipherSuite,
    TlsRecordType, MAX_RECORD_LEN,
};

use super::hello::{CIPHER_SUITES, HANDSHAKE_HELLO_REQUEST, HANDSHAKE_SERVER_HELLO};
use super::{Answer, LegacyVersion, MAX_ANSWER_BYTES};

/// Decide what `received` (everything read after sending
/// [`client_hello`]`(version, _)`) says about `version`:
/// - a ServerHello for `version` with a suite we offered: `supported` (detail:
///   the suite's name);
/// - a ServerHello for another version: `not_supported` (detail: the version
///   the server chose);
/// - a fatal alert (or `close_notify`): `not_supported` (detail: its name);
///   warning alerts before the ServerHello are skipped;
/// - anything that is not TLS (an SMTP reply, garbage), a malformed or
///   unexpected message, or [`MAX_ANSWER_BYTES`] without a verdict: `error`;
/// - otherwise [`Answer::Incomplete`].
pub fn classify(version: LegacyVersion, received: &[u8]) -> Answer {
    match first_message(received) {
        FirstMessage::Incomplete => incomplete(received),
        FirstMessage::Refused(detail) => Answer::verdict(VersionSupport::NotSupported, detail),
        FirstMessage::Error(detail) => Answer::error(detail),
        FirstMessage::ServerHello(body) => judge_server_hello(version, &body),
    }
}

/// The server's first decisive message after a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FirstMessage {
    /// Read more (the caller bounds how much).
    Incomplete,
    /// A fatal alert or `close_notify` (the detail names it).
    Refused(String),
    /// Not TLS, malformed, or unexpected.
    Error(String),
    /// The ServerHello's body (after the handshake header).
    ServerHello(Vec<u8>),
}

/// Read records until the first decisive message: warning alerts and
/// HelloRequests before the ServerHello are skipped, a ServerHello may be
/// fragmented over records. The one reader of hello answers (version
/// probes and the TLS depth's hellos).
pub(crate) fn first_message(received: &[u8]) -> FirstMessage {
    let mut rest = received;
    // Handshake records' payloads, joined: a ServerHello may be fragmented.
    let mut handshake: Vec<u8> = Vec::new();
    loop {
        if let Some(error) = sniff_record_header(rest) {
            return FirstMessage::Error(error);
        }
        let (tail, record) = match parse_tls_raw_record(rest) {
            Ok(parsed) => parsed,
            Err(NomErr::Incomplete(_)) => return FirstMessage::Incomplete,
            Err(_) => return FirstMessage::Error("malformed TLS record".into()),
        };
        rest = tail;
        let decided = match record.hdr.record_type {
            TlsRecordType::Alert => alerts(record.data),
            TlsRecordType::Handshake => {
                handshake.extend_from_slice(record.data);
                server_hello(&mut handshake)
            }
            other => Some(FirstMessage::Error(format!(
                "unexpected {other:?} record before the ServerHello"
            ))),
        };
        if let Some(decided) = decided {
            return decided;
        }
        if rest.is_empty() {
            return FirstMessage::Incomplete;
        }
    }
}

fn incomplete(received: &[u8]) -> Answer {
    if received.len() >= MAX_ANSWER_BYTES {
        Answer::error(format!("no answer within {MAX_ANSWER_BYTES} bytes"))
    } else {
        Answer::Incomplete
    }
}

/// Reject what cannot be the start of a TLS record as early as possible, so
/// that an SMTP reply does not wait for the timeout. `None`: looks like TLS
/// so far (or is empty).
fn sniff_record_header(bytes: &[u8]) -> Option<String> {
    let first = *bytes.first()?;
    if !(0x14..=0x18).contains(&first) {
        return Some(not_tls_detail(bytes));
    }
    if let Some(&major) = bytes.get(1) {
        if major != 3 {
            return Some(format!("not a TLS record (version major 0x{major:02x})"));
        }
    }
    if let (Some(&hi), Some(&lo)) = (bytes.get(3), bytes.get(4)) {
        let len = u16::from_be_bytes([hi, lo]);
        if len > MAX_RECORD_LEN {
            return Some(format!("oversized TLS record ({len} bytes)"));
        }
    }
    None
}

/// "not TLS: "454 4.7.0 TLS not available"" for text, a short hex dump otherwise.
fn not_tls_detail(bytes: &[u8]) -> String {
    let head = bytes.get(..bytes.len().min(60)).unwrap_or_default();
    let first_line = head.split(|&b| b == b'\r' || b == b'\n').next();
    match first_line {
        Some(line) if !line.is_empty() && line.iter().all(|b| (0x20..0x7f).contains(b)) => {
            format!("not TLS: {:?}", String::from_utf8_lossy(line))
        }
        _ => {
            let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("not TLS: bytes {}", hex.join(" "))
        }
    }
}

/// Alerts in one record: `None` if all were warnings to skip.
fn alerts(data: &[u8]) -> Option<FirstMessage> {
    if data.is_empty() || data.len() % 2 != 0 {
        return Some(FirstMessage::Error("malformed alert record".into()));
    }
    for pair in data.chunks_exact(2) {
        let [level, code] = *pair else {
            return Some(FirstMessage::Error("malformed alert record".into()));
        };
        let name = alert_name(code);
        match (level, code) {
            (1, 0) | (2, _) => return Some(FirstMessage::Refused(format!("alert {name}"))),
            (1, _) => {}
            _ => {
                return Some(FirstMessage::Error(format!(
                    "malformed alert (level {level}, {name})"
                )))
            }
        }
    }
    None
}

/// RFC name of an alert, `protocol_version` style, or its number.
pub(crate) fn alert_name(code: u8) -> String {
    let camel = TlsAlertDescription(code).to_string();
    if camel.is_empty() || !camel.bytes().all(|b| b.is_ascii_alphabetic()) {
        return format!("alert_{code}");
    }
    let mut snake = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// Look at the joined handshake bytes: `None` while the ServerHello is not
/// complete yet. HelloRequests before it are dropped.
fn server_hello(handshake: &mut Vec<u8>) -> Option<FirstMessage> {
    loop {
        let &[kind, a, b, c] = handshake.get(..4)? else {
            return None;
        };
        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        match kind {
            HANDSHAKE_HELLO_REQUEST if len == 0 => {
                handshake.drain(..4);
            }
            HANDSHAKE_SERVER_HELLO => {
                if len > MAX_ANSWER_BYTES {
                    return Some(FirstMessage::Error(format!(
                        "oversized ServerHello ({len} bytes)"
                    )));
                }
                let end = len.checked_add(4)?;
                let body = handshake.get(4..end)?;
                return Some(FirstMessage::ServerHello(body.to_vec()));
            }
            other => {
                return Some(FirstMessage::Error(format!(
                    "unexpected handshake message {other} before the ServerHello"
                )))
            }
        }
    }
}

fn judge_server_hello(version: LegacyVersion, body: &[u8]) -> Answer {
    let chosen = match body.get(..2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => return Answer::error("malformed ServerHello"),
    };
    if chosen != version.wire() {
        return Answer::verdict(
            VersionSupport::NotSupported,
            format!(
                "server chose {} for a {} hello",
                version_name(chosen),
                version.name()
            ),
        );
    }
    let Ok((_, hello)) = parse_tls_handshake_server_hello(body) else {
        return Answer::error("malformed ServerHello");
    };
    let cipher = hello.cipher.0;
    if !CIPHER_SUITES.contains(&cipher) {
        return Answer::error(format!(
            "server chose cipher suite 0x{cipher:04x}, which was not offered"
        ));
    }
    // DEFLATE is offered from TLS 1.0 on (a CRIME fact), never in SSLv3.
    let offered = if version.has_extensions() { 1 } else { 0 };
    if hello.compression.0 > offered {
        return Answer::error(format!(
            "server chose compression method {}, which was not offered",
            hello.compression.0
        ));
    }
    let name = TlsCipherSuite::from_id(cipher)
        .map_or_else(|| format!("0x{cipher:04x}"), |suite| suite.name.to_owned());
    Answer::verdict(VersionSupport::Supported, name)
}

/// `TLSv1.2` style name of a wire version, or its hex.
pub(crate) fn version_name(wire: u16) -> String {
    match wire {
        0x0002 | 0x0200 => "SSLv2".to_owned(),
        0x0300 => "SSLv3".to_owned(),
        0x0301 => "TLSv1.0".to_owned(),
        0x0302 => "TLSv1.1".to_owned(),
        0x0303 => "TLSv1.2".to_owned(),
        0x0304 => "TLSv1.3".to_owned(),
        other => format!("version 0x{other:04x}"),
    }
}

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What a ServerHello says the server chose (a version probe's, a depth
/// hello's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The negotiated version (`supported_versions` for TLS 1.3).
    pub version: u16,
    pub cipher: u16,
    pub compression: u8,
    pub renegotiation_info: bool,
    pub extended_master_secret: bool,
    /// A HelloRetryRequest (TLS 1.3): the suite is chosen all the same.
    pub retry_request: bool,
    /// TLS 1.3: the key share's (or the retry's) group.
    pub group: Option<u16>,
    /// The heartbeat extension (RFC 6520) came back.
    pub heartbeat: bool,
}

/// The fields of a ServerHello body (after the handshake header).
pub(crate) fn read_server_hello(body: &[u8]) -> Option<Pick> {
    let version = be16_at(body, 0)?;
    let random = body.get(2..34)?;
    let session_len = usize::from(*body.get(34)?);
    let at = 35 + session_len;
    let cipher = be16_at(body, at)?;
    let compression = *body.get(at + 2)?;
    let mut pick = Pick {
        version,
        cipher,
        compression,
        renegotiation_info: false,
        extended_master_secret: false,
        retry_request: random == HRR_RANDOM,
        group: None,
        heartbeat: false,
    };
    let Some(total) = be16_at(body, at + 3) else {
        return Some(pick); // no extensions at all
    };
    let mut ext = body.get(at + 5..at + 5 + usize::from(total))?;
    while !ext.is_empty() {
        let kind = be16_at(ext, 0)?;
        let len = usize::from(be16_at(ext, 2)?);
        let data = ext.get(4..4 + len)?;
        match kind {
            0xff01 => pick.renegotiation_info = true,
            0x0017 => pick.extended_master_secret = true,
            0x002b => pick.version = be16_at(data, 0)?,
            0x0033 => pick.group = be16_at(data, 0),
            0x000f => pick.heartbeat = true,
            _ => {}
        }
        ext = ext.get(4 + len..)?;
    }
    Some(pick)
}

fn be16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([*pair.first()?, *pair.get(1)?]))
}
