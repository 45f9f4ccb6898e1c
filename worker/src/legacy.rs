//! Protocol-version probes: SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 (DESIGN §4).
//!
//! rustls cannot speak the old versions, nor RSA key exchange, DHE or CBC
//! suites in TLS 1.2, so each version is tested by sending a
//! hand-built ClientHello that offers exactly one version, on a stream that
//! has just received STARTTLS's `220`, and by reading the first answer: a
//! ServerHello or an alert. No handshake is ever completed; the caller drops
//! the connection afterwards (one fresh SMTP session per version).
//!
//! Sans-IO core: [`client_hello`] builds the bytes to send and [`classify`]
//! reads what came back, saying [`Answer::Incomplete`] until it can decide.
//! [`test_version`] is the thin async driver that owns the socket.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mxscope_common::VersionSupport;
use tls_parser::nom::Err as NomErr;
use tls_parser::{
    parse_tls_handshake_server_hello, parse_tls_raw_record, TlsAlertDescription, TlsCipherSuite,
    TlsRecordType, MAX_RECORD_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Most bytes read while waiting for a verdict; more is an `error`.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// A protocol version rustls cannot speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyVersion {
    Ssl3,
    Tls1_0,
    Tls1_1,
    /// With every TLS 1.2 suite a permissive OpenSSL client offers (RSA key
    /// exchange, DHE, CBC included), unlike rustls.
    Tls1_2,
}

impl LegacyVersion {
    /// Every version probed by hand, oldest first.
    pub const ALL: [Self; 4] = [Self::Ssl3, Self::Tls1_0, Self::Tls1_1, Self::Tls1_2];

    /// The version number on the wire (`client_version`, record version).
    pub const fn wire(self) -> u16 {
        match self {
            Self::Ssl3 => 0x0300,
            Self::Tls1_0 => 0x0301,
            Self::Tls1_1 => 0x0302,
            Self::Tls1_2 => 0x0303,
        }
    }

    /// The record-layer version of the ClientHello: the version itself, but
    /// TLS 1.0 for a TLS 1.2 hello, as OpenSSL sends it (old servers refuse
    /// a record version they do not know).
    pub const fn record_wire(self) -> u16 {
        match self {
            Self::Tls1_2 => 0x0301,
            other => other.wire(),
        }
    }

    /// The record's `protocols` key (`tls1_0`).
    pub const fn key(self) -> &'static str {
        match self {
            Self::Ssl3 => "ssl3",
            Self::Tls1_0 => "tls1_0",
            Self::Tls1_1 => "tls1_1",
            Self::Tls1_2 => "tls1_2",
        }
    }

    /// Display name, spelled like the record's `tls.version` (`TLSv1.0`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ssl3 => "SSLv3",
            Self::Tls1_0 => "TLSv1.0",
            Self::Tls1_1 => "TLSv1.1",
            Self::Tls1_2 => "TLSv1.2",
        }
    }

    /// SSLv3 has no extensions (RFC 6101), so no SNI either.
    const fn has_extensions(self) -> bool {
        !matches!(self, Self::Ssl3)
    }
}

/// What [`classify`] makes of the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not enough bytes to decide: read more (within the deadline).
    Incomplete,
    /// Decided; the detail is short and meant for people.
    Verdict(VersionSupport, Option<String>),
}

impl Answer {
    fn verdict(support: VersionSupport, detail: impl Into<String>) -> Self {
        Self::Verdict(support, Some(detail.into()))
    }

    fn error(detail: impl Into<String>) -> Self {
        Self::verdict(VersionSupport::Error, detail)
    }
}

/// The cipher suites offered, strongest first: a broad list of what clients
/// of the SSLv3–TLS 1.1 era sent, down to DES and export suites, so that a
/// server speaking the version finds something it accepts. The AES-GCM
/// suites are TLS 1.2 only and are never chosen by a correct server here.
const CIPHER_SUITES: &[u16] = &[
    // TLS 1.2 AEAD and SHA-2 suites first: a TLS 1.2 server picks from its own
    // preference anyway, and older servers ignore what they do not know.
    0xc02c, // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    0xc030, // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    0xcca9, // TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    0xcca8, // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    0xc02b, // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    0xc02f, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    0x009f, // TLS_DHE_RSA_WITH_AES_256_GCM_SHA384
    0xccaa, // TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    0x009e, // TLS_DHE_RSA_WITH_AES_128_GCM_SHA256
    0xc024, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
    0xc028, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
    0xc023, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
    0xc027, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
    0x006b, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA256
    0x0067, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA256
    0x009d, // TLS_RSA_WITH_AES_256_GCM_SHA384
    0x009c, // TLS_RSA_WITH_AES_128_GCM_SHA256
    0x003d, // TLS_RSA_WITH_AES_256_CBC_SHA256
    0x003c, // TLS_RSA_WITH_AES_128_CBC_SHA256
    0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0xc014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xc009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0xc013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0x0039, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA
    0x0038, // TLS_DHE_DSS_WITH_AES_256_CBC_SHA
    0x0088, // TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA
    0x0087, // TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA
    0x0033, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA
    0x0032, // TLS_DHE_DSS_WITH_AES_128_CBC_SHA
    0x0045, // TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA
    0x0044, // TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA
    0x009a, // TLS_DHE_RSA_WITH_SEED_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x0084, // TLS_RSA_WITH_CAMELLIA_256_CBC_SHA
    0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0041, // TLS_RSA_WITH_CAMELLIA_128_CBC_SHA
    0x0096, // TLS_RSA_WITH_SEED_CBC_SHA
    0x0007, // TLS_RSA_WITH_IDEA_CBC_SHA
    0xc008, // TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA
    0xc012, // TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x0016, // TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x0013, // TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA
    0x000a, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    0xc007, // TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
    0xc011, // TLS_ECDHE_RSA_WITH_RC4_128_SHA
    0x0005, // TLS_RSA_WITH_RC4_128_SHA
    0x0004, // TLS_RSA_WITH_RC4_128_MD5
    0x0015, // TLS_DHE_RSA_WITH_DES_CBC_SHA
    0x0012, // TLS_DHE_DSS_WITH_DES_CBC_SHA
    0x0009, // TLS_RSA_WITH_DES_CBC_SHA
    0x0014, // TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA
    0x0011, // TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA
    0x0008, // TLS_RSA_EXPORT_WITH_DES40_CBC_SHA
    0x0006, // TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5
    0x0003, // TLS_RSA_EXPORT_WITH_RC4_40_MD5
];

/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746), never a real choice.
const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// supported_groups: x25519, secp256r1, secp384r1, secp521r1.
const GROUPS: [u16; 4] = [0x001d, 0x0017, 0x0018, 0x0019];

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;

/// signature_algorithms of a TLS 1.2 hello (RFC 5246 §7.4.1.4.1, RFC 8446
/// names): SHA-2 and PSS first, SHA-1 and DSA last, as OpenSSL offers them.
const SIGNATURE_SCHEMES: [u16; 15] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0402, 0x0203,
    0x0201, 0x0202, 0x0303,
];
const EXT_PADDING: u16 = 0x0015;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const HANDSHAKE_HELLO_REQUEST: u8 = 0;

/// A ClientHello record offering exactly `version`: record-layer version and
/// `client_version` both equal to it, no `supported_versions`, no session id,
/// null compression only. TLS 1.0/1.1 carry server_name (when `sni` is a
/// usable host name), supported_groups, ec_point_formats and an empty
/// renegotiation_info; SSLv3 has no extensions and signals secure
/// renegotiation with the SCSV instead (RFC 5746 §3.4 advises against
/// sending both).
pub fn client_hello(version: LegacyVersion, sni: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(&version.wire().to_be_bytes());
    body.extend_from_slice(&hello_random());
    body.push(0); // session_id: empty

    let mut suites: Vec<u16> = CIPHER_SUITES.to_vec();
    if !version.has_extensions() {
        suites.push(RENEGOTIATION_SCSV);
    }
    body.extend_from_slice(&be16(suites.len() * 2));
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression_methods: null

    if version.has_extensions() {
        let mut ext = Vec::with_capacity(128);
        if let Some(host) = sni.and_then(sni_host) {
            let name_len = host.len();
            let mut data = Vec::with_capacity(name_len + 5);
            data.extend_from_slice(&be16(name_len + 3)); // server_name_list
            data.push(0); // name_type: host_name
            data.extend_from_slice(&be16(name_len));
            data.extend_from_slice(host.as_bytes());
            push_extension(&mut ext, EXT_SERVER_NAME, &data);
        }
        let mut groups = Vec::with_capacity(2 + 2 * GROUPS.len());
        groups.extend_from_slice(&be16(2 * GROUPS.len()));
        for group in GROUPS {
            groups.extend_from_slice(&group.to_be_bytes());
        }
        push_extension(&mut ext, EXT_SUPPORTED_GROUPS, &groups);
        push_extension(&mut ext, EXT_EC_POINT_FORMATS, &[1, 0]); // uncompressed
        if version == LegacyVersion::Tls1_2 {
            let mut schemes = Vec::with_capacity(2 + 2 * SIGNATURE_SCHEMES.len());
            schemes.extend_from_slice(&be16(2 * SIGNATURE_SCHEMES.len()));
            for scheme in SIGNATURE_SCHEMES {
                schemes.extend_from_slice(&scheme.to_be_bytes());
            }
            push_extension(&mut ext, EXT_SIGNATURE_ALGORITHMS, &schemes);
        }
        push_extension(&mut ext, EXT_RENEGOTIATION_INFO, &[0]); // empty

        // Some F5 load balancers hang on ClientHello messages (handshake
        // header included) of 256..=511 bytes (RFC 7685 §4): pad those to 512.
        let unpadded = 4 + body.len() + 2 + ext.len();
        if (256..512).contains(&unpadded) {
            let pad = 512_usize.saturating_sub(unpadded + 4).max(1);
            push_extension(&mut ext, EXT_PADDING, &vec![0; pad]);
        }
        body.extend_from_slice(&be16(ext.len()));
        body.extend_from_slice(&ext);
    }

    let mut record = Vec::with_capacity(body.len() + 9);
    record.push(u8::from(TlsRecordType::Handshake));
    record.extend_from_slice(&version.record_wire().to_be_bytes());
    record.extend_from_slice(&be16(body.len() + 4));
    record.push(HANDSHAKE_CLIENT_HELLO);
    record.extend_from_slice(&be24(body.len()));
    record.extend_from_slice(&body);
    record
}

/// The host name to send as SNI, if `sni` is one: not an IP literal
/// (RFC 6066 §3), ASCII letters, digits, `-`, `_` and `.`, at most 253 bytes,
/// without the trailing dot.
fn sni_host(sni: &str) -> Option<&str> {
    let host = sni.strip_suffix('.').unwrap_or(sni);
    let usable = !host.is_empty()
        && host.len() <= 253
        && host.parse::<IpAddr>().is_err()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    usable.then_some(host)
}

fn push_extension(ext: &mut Vec<u8>, kind: u16, data: &[u8]) {
    ext.extend_from_slice(&kind.to_be_bytes());
    ext.extend_from_slice(&be16(data.len()));
    ext.extend_from_slice(data);
}

/// Big-endian u16 of a length; hello blocks stay far below 64 KiB (the SNI,
/// the only variable part, is capped at 253 bytes).
fn be16(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

fn be24(len: usize) -> [u8; 3] {
    let [_, a, b, c] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [a, b, c]
}

/// 32 bytes of ClientHello random: `gmt_unix_time` then a splitmix64 stream
/// seeded from the clock and a counter. Unpredictability does not matter:
/// no key is ever derived from it.
fn hello_random() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut state = (now.as_nanos() as u64) ^ count.wrapping_mul(0xa076_1d64_78bd_642f);
    let mut random = [0u8; 32];
    for chunk in random.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes());
    }
    let secs = u32::try_from(now.as_secs()).unwrap_or(u32::MAX);
    random[..4].copy_from_slice(&secs.to_be_bytes());
    random
}

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
    let mut rest = received;
    // Handshake records' payloads, joined: a ServerHello may be fragmented.
    let mut handshake: Vec<u8> = Vec::new();
    loop {
        if let Some(answer) = sniff_record_header(rest) {
            return answer;
        }
        let (tail, record) = match parse_tls_raw_record(rest) {
            Ok(parsed) => parsed,
            Err(NomErr::Incomplete(_)) => return incomplete(received),
            Err(_) => return Answer::error("malformed TLS record"),
        };
        rest = tail;
        let answer = match record.hdr.record_type {
            TlsRecordType::Alert => alerts(record.data),
            TlsRecordType::Handshake => {
                handshake.extend_from_slice(record.data);
                server_hello(version, &mut handshake)
            }
            other => Some(Answer::error(format!(
                "unexpected {other:?} record before the ServerHello"
            ))),
        };
        if let Some(answer) = answer {
            return answer;
        }
        if rest.is_empty() {
            return incomplete(received);
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
fn sniff_record_header(bytes: &[u8]) -> Option<Answer> {
    let first = *bytes.first()?;
    if !(0x14..=0x18).contains(&first) {
        return Some(Answer::error(not_tls_detail(bytes)));
    }
    if let Some(&major) = bytes.get(1) {
        if major != 3 {
            return Some(Answer::error(format!(
                "not a TLS record (version major 0x{major:02x})"
            )));
        }
    }
    if let (Some(&hi), Some(&lo)) = (bytes.get(3), bytes.get(4)) {
        let len = u16::from_be_bytes([hi, lo]);
        if len > MAX_RECORD_LEN {
            return Some(Answer::error(format!("oversized TLS record ({len} bytes)")));
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
fn alerts(data: &[u8]) -> Option<Answer> {
    if data.is_empty() || data.len() % 2 != 0 {
        return Some(Answer::error("malformed alert record"));
    }
    for pair in data.chunks_exact(2) {
        let [level, code] = *pair else {
            return Some(Answer::error("malformed alert record"));
        };
        let name = alert_name(code);
        match (level, code) {
            (1, 0) | (2, _) => {
                return Some(Answer::verdict(
                    VersionSupport::NotSupported,
                    format!("alert {name}"),
                ))
            }
            (1, _) => {}
            _ => {
                return Some(Answer::error(format!(
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
fn server_hello(version: LegacyVersion, handshake: &mut Vec<u8>) -> Option<Answer> {
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
                    return Some(Answer::error(format!(
                        "oversized ServerHello ({len} bytes)"
                    )));
                }
                let end = len.checked_add(4)?;
                let body = handshake.get(4..end)?;
                return Some(judge_server_hello(version, body));
            }
            other => {
                return Some(Answer::error(format!(
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
    if hello.compression.0 != 0 {
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

/// Send a ClientHello offering exactly `version` on a stream that has just
/// received STARTTLS's 220, and classify the answer. `timeout` is one
/// absolute deadline for writing and reading. A server that closes or resets
/// the connection without a byte has refused the version (`not_supported`,
/// "connection closed"); running out of time is an `error` ("timeout").
/// The stream is left mid-handshake: drop it.
pub async fn test_version<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    sni: Option<&str>,
    timeout: Duration,
) -> (VersionSupport, Option<String>) {
    let deadline = Instant::now() + timeout;
    let (support, detail) = exchange(stream, version, sni, deadline).await;
    tracing::debug!(version = version.name(), ?support, detail = ?detail, "legacy probe");
    (support, detail)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    version: LegacyVersion,
    sni: Option<&str>,
    deadline: Instant,
) -> (VersionSupport, Option<String>) {
    let hello = client_hello(version, sni);
    let write = async {
        stream.write_all(&hello).await?;
        stream.flush().await
    };
    match tokio::time::timeout_at(deadline, write).await {
        Err(_) => return error("timeout"),
        Ok(Err(e)) => return error(format!("write failed: {e}")),
        Ok(Ok(())) => {}
    }

    let mut received: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 4096];
    loop {
        let room = MAX_ANSWER_BYTES
            .saturating_sub(received.len())
            .min(chunk.len());
        let Some(window) = chunk.get_mut(..room) else {
            return error("answer buffer full");
        };
        let n = match tokio::time::timeout_at(deadline, stream.read(window)).await {
            Err(_) => return error("timeout"),
            Ok(Ok(n)) => n,
            Ok(Err(e)) if received.is_empty() && is_reset(&e) => {
                return (
                    VersionSupport::NotSupported,
                    Some("connection reset".into()),
                )
            }
            Ok(Err(e)) => return error(format!("read failed: {e}")),
        };
        if n == 0 {
            return if received.is_empty() {
                (
                    VersionSupport::NotSupported,
                    Some("connection closed".into()),
                )
            } else {
                error(format!(
                    "connection closed after {} bytes, mid-answer",
                    received.len()
                ))
            };
        }
        received.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Answer::Verdict(support, detail) = classify(version, &received) {
            return (support, detail);
        }
    }
}

fn error(detail: impl Into<String>) -> (VersionSupport, Option<String>) {
    (VersionSupport::Error, Some(detail.into()))
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tls_parser::{
        parse_tls_extensions, parse_tls_plaintext, TlsClientHelloContents, TlsExtension,
        TlsMessage, TlsMessageHandshake,
    };

    use super::*;

    /// Parse our own hello back with tls-parser: (record version, hello, extensions).
    fn parse_hello(
        bytes: &[u8],
        check: impl FnOnce(u16, &TlsClientHelloContents<'_>, Vec<TlsExtension<'_>>),
    ) {
        let (rest, plaintext) = parse_tls_plaintext(bytes).expect("our hello parses");
        assert!(rest.is_empty(), "one record, nothing after it");
        assert_eq!(plaintext.hdr.record_type, TlsRecordType::Handshake);
        let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))] =
            plaintext.msg.as_slice()
        else {
            panic!("expected one ClientHello, got {:?}", plaintext.msg);
        };
        let extensions = match hello.ext {
            Some(ext) => {
                let (rest, extensions) = parse_tls_extensions(ext).expect("extensions parse");
                assert!(rest.is_empty());
                extensions
            }
            None => Vec::new(),
        };
        check(plaintext.hdr.version.0, hello, extensions);
    }

    fn sni_of(extensions: &[TlsExtension<'_>]) -> Option<String> {
        extensions.iter().find_map(|e| match e {
            TlsExtension::SNI(names) => names
                .first()
                .map(|(_, name)| String::from_utf8_lossy(name).into_owned()),
            _ => None,
        })
    }

    #[test]
    fn hello_offers_exactly_one_version() {
        for version in LegacyVersion::ALL {
            for sni in [Some("mx1.example.it"), None] {
                let bytes = client_hello(version, sni);
                parse_hello(&bytes, |record_version, hello, extensions| {
                    assert_eq!(
                        record_version,
                        version.record_wire(),
                        "{version:?} record version"
                    );
                    assert_eq!(
                        hello.version.0,
                        version.wire(),
                        "{version:?} client_version"
                    );
                    assert_eq!(hello.random.len(), 32);
                    assert_eq!(hello.session_id, None);
                    assert_eq!(hello.comp.iter().map(|c| c.0).collect::<Vec<_>>(), [0]);
                    let ciphers: Vec<u16> = hello.ciphers.iter().map(|c| c.0).collect();
                    assert!(ciphers.contains(&0x002f) && ciphers.contains(&0x0005));
                    assert!(!ciphers.contains(&0x5600), "never TLS_FALLBACK_SCSV");
                    assert!(!extensions
                        .iter()
                        .any(|e| matches!(e, TlsExtension::SupportedVersions(_))));
                    if version == LegacyVersion::Ssl3 {
                        assert_eq!(hello.ext, None, "SSLv3 has no extensions");
                        assert!(ciphers.contains(&RENEGOTIATION_SCSV));
                    } else {
                        assert_eq!(sni_of(&extensions).as_deref(), sni);
                        assert!(extensions.iter().any(|e| matches!(
                            e,
                            TlsExtension::EllipticCurves(groups) if groups.len() == 4
                        )));
                        assert!(extensions.contains(&TlsExtension::EcPointFormats(&[0])));
                        assert!(extensions.contains(&TlsExtension::RenegotiationInfo(&[])));
                    }
                });
            }
        }
    }

    #[test]
    fn sni_only_for_host_names() {
        for sni in [
            "192.0.2.1",
            "::1",
            "",
            ".",
            "bad name",
            "ünïcode.example",
            "x\0y",
        ] {
            let bytes = client_hello(LegacyVersion::Tls1_0, Some(sni));
            parse_hello(&bytes, |_, _, extensions| {
                assert_eq!(sni_of(&extensions), None, "{sni:?}");
            });
        }
        let bytes = client_hello(LegacyVersion::Tls1_1, Some("mx.example.it."));
        parse_hello(&bytes, |_, _, extensions| {
            assert_eq!(sni_of(&extensions).as_deref(), Some("mx.example.it"));
        });
    }

    #[test]
    fn every_offered_suite_is_known() {
        for &suite in CIPHER_SUITES {
            assert!(TlsCipherSuite::from_id(suite).is_some(), "0x{suite:04x}");
        }
    }

    #[test]
    fn hello_avoids_the_f5_length_range() {
        // Every SNI length a label allows, to hit both edges of the range.
        let names: Vec<String> = (1..=60)
            .flat_map(|n| (0..4).map(move |labels| (n, labels)))
            .map(|(n, labels)| {
                let mut name = "a".repeat(n);
                for _ in 0..labels {
                    name.push('.');
                    name.push_str(&"b".repeat(60));
                }
                name
            })
            .collect();
        for version in LegacyVersion::ALL {
            let snis = std::iter::once(None).chain(names.iter().map(|n| Some(n.as_str())));
            for sni in snis {
                let bytes = client_hello(version, sni);
                parse_hello(&bytes, |_, _, extensions| {
                    let expected = sni.filter(|s| s.len() <= 253 && version.has_extensions());
                    assert_eq!(sni_of(&extensions).as_deref(), expected);
                });
                let handshake_len = bytes.len() - 5;
                assert!(
                    !(256..512).contains(&handshake_len),
                    "{version:?} {sni:?}: {handshake_len}"
                );
            }
        }
    }

    #[test]
    fn random_differs_between_hellos() {
        let a = client_hello(LegacyVersion::Tls1_0, None);
        let b = client_hello(LegacyVersion::Tls1_0, None);
        assert_ne!(a.get(11..43), b.get(11..43));
    }

    /// A ServerHello handshake message (header included).
    fn server_hello_msg(version: u16, cipher: u16, extensions: bool) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x42; 32]);
        body.push(32);
        body.extend_from_slice(&[0x17; 32]);
        body.extend_from_slice(&cipher.to_be_bytes());
        body.push(0);
        if extensions {
            body.extend_from_slice(&[0x00, 0x05, 0xff, 0x01, 0x00, 0x01, 0x00]);
        }
        let mut msg = vec![HANDSHAKE_SERVER_HELLO];
        msg.extend_from_slice(&be24(body.len()));
        msg.extend_from_slice(&body);
        msg
    }

    fn record(kind: u8, version: u16, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![kind];
        r.extend_from_slice(&version.to_be_bytes());
        r.extend_from_slice(&be16(payload.len()));
        r.extend_from_slice(payload);
        r
    }

    fn handshake(version: u16, payload: &[u8]) -> Vec<u8> {
        record(0x16, version, payload)
    }

    fn alert(level: u8, code: u8) -> Vec<u8> {
        record(0x15, 0x0301, &[level, code])
    }

    fn supported(detail: &str) -> Answer {
        Answer::Verdict(VersionSupport::Supported, Some(detail.into()))
    }

    fn not_supported(detail: &str) -> Answer {
        Answer::Verdict(VersionSupport::NotSupported, Some(detail.into()))
    }

    fn is_error(answer: &Answer) -> bool {
        matches!(answer, Answer::Verdict(VersionSupport::Error, Some(_)))
    }

    #[test]
    fn matching_server_hello_is_supported() {
        let ssl3 = handshake(0x0300, &server_hello_msg(0x0300, 0x002f, false));
        assert_eq!(
            classify(LegacyVersion::Ssl3, &ssl3),
            supported("TLS_RSA_WITH_AES_128_CBC_SHA")
        );
        let tls10 = handshake(0x0301, &server_hello_msg(0x0301, 0xc013, true));
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &tls10),
            supported("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
        );
        let tls11 = handshake(0x0301, &server_hello_msg(0x0302, 0x0005, false));
        assert_eq!(
            classify(LegacyVersion::Tls1_1, &tls11),
            supported("TLS_RSA_WITH_RC4_128_SHA")
        );
    }

    #[test]
    fn server_hello_followed_by_more_messages() {
        let mut payload = server_hello_msg(0x0301, 0x0035, true);
        payload.extend_from_slice(&[11, 0, 0, 3, 0, 0, 0]); // empty Certificate
        payload.extend_from_slice(&[14, 0, 0, 0]); // ServerHelloDone
        let bytes = handshake(0x0301, &payload);
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &bytes),
            supported("TLS_RSA_WITH_AES_256_CBC_SHA")
        );
    }

    #[test]
    fn fragmented_server_hello_waits_then_decides() {
        let msg = server_hello_msg(0x0302, 0x002f, true);
        let (a, b) = msg.split_at(10);
        let first = handshake(0x0302, a);
        assert_eq!(classify(LegacyVersion::Tls1_1, &first), Answer::Incomplete);
        let mut both = first.clone();
        both.extend_from_slice(&handshake(0x0302, b));
        assert_eq!(
            classify(LegacyVersion::Tls1_1, &both),
            supported("TLS_RSA_WITH_AES_128_CBC_SHA")
        );
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let full = handshake(0x0301, &server_hello_msg(0x0301, 0x002f, true));
        for end in 0..full.len() {
            let prefix = full.get(..end).unwrap_or_default();
            assert_eq!(
                classify(LegacyVersion::Tls1_0, prefix),
                Answer::Incomplete,
                "prefix of {end} bytes"
            );
        }
    }

    #[test]
    fn other_version_is_not_supported() {
        let tls12 = handshake(0x0303, &server_hello_msg(0x0303, 0xc02f, true));
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &tls12),
            not_supported("server chose TLSv1.2 for a TLSv1.0 hello")
        );
        let ssl3 = handshake(0x0300, &server_hello_msg(0x0300, 0x002f, false));
        assert_eq!(
            classify(LegacyVersion::Tls1_1, &ssl3),
            not_supported("server chose SSLv3 for a TLSv1.1 hello")
        );
        let odd = handshake(0x0301, &server_hello_msg(0x7f12, 0x1301, false));
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &odd),
            not_supported("server chose version 0x7f12 for a TLSv1.0 hello")
        );
    }

    #[test]
    fn unoffered_cipher_is_an_error() {
        for cipher in [0x1301, RENEGOTIATION_SCSV, 0x0000, 0xffff] {
            let bytes = handshake(0x0301, &server_hello_msg(0x0301, cipher, false));
            let answer = classify(LegacyVersion::Tls1_0, &bytes);
            assert!(is_error(&answer), "0x{cipher:04x}: {answer:?}");
        }
    }

    #[test]
    fn fatal_alerts_are_not_supported() {
        for (code, name) in [
            (70, "protocol_version"),
            (40, "handshake_failure"),
            (71, "insufficient_security"),
            (80, "internal_error"),
            (200, "alert_200"),
        ] {
            for version in LegacyVersion::ALL {
                assert_eq!(
                    classify(version, &alert(2, code)),
                    not_supported(&format!("alert {name}"))
                );
            }
        }
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &alert(1, 0)),
            not_supported("alert close_notify")
        );
    }

    #[test]
    fn warning_alerts_are_skipped() {
        let warning = alert(1, 112); // unrecognized_name
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &warning),
            Answer::Incomplete
        );
        let mut bytes = warning;
        bytes.extend_from_slice(&handshake(0x0301, &server_hello_msg(0x0301, 0x002f, true)));
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &bytes),
            supported("TLS_RSA_WITH_AES_128_CBC_SHA")
        );
        let mut hello_request = handshake(0x0301, &[0, 0, 0, 0]);
        hello_request.extend_from_slice(&alert(2, 40));
        assert_eq!(
            classify(LegacyVersion::Tls1_0, &hello_request),
            not_supported("alert handshake_failure")
        );
    }

    #[test]
    fn non_tls_answers_are_errors() {
        let smtp = b"454 4.7.0 TLS not available due to local problem\r\n";
        assert_eq!(
            classify(LegacyVersion::Tls1_0, smtp),
            Answer::error("not TLS: \"454 4.7.0 TLS not available due to local problem\"")
        );
        // Decided on the first byte, without waiting for more.
        assert!(is_error(&classify(LegacyVersion::Tls1_0, b"4")));
        for garbage in [
            &[0xff, 0x00, 0x01][..],
            &[0x80, 0x2e, 0x04, 0x00, 0x01, 0x00, 0x02][..], // SSLv2 framing
            &[0x16, 0x02, 0x00, 0x00, 0x10][..],
            &[0x16, 0x03, 0x01, 0xff, 0xff][..],
            &record(0x17, 0x0301, b"early application data")[..],
            &record(0x15, 0x0301, &[2])[..],
            &record(0x15, 0x0301, &[])[..],
            &record(0x15, 0x0301, &[7, 40])[..],
            &handshake(0x0301, &[11, 0, 0, 3, 0, 0, 0])[..], // Certificate first
            &handshake(0x0301, &[2, 0, 0, 1, 3])[..],        // 1-byte ServerHello
            &handshake(0x0301, &[2, 0, 0, 4, 3, 1, 0, 0])[..], // cut-short ServerHello
        ] {
            let answer = classify(LegacyVersion::Tls1_0, garbage);
            assert!(is_error(&answer), "{garbage:02x?}: {answer:?}");
        }
        assert_eq!(classify(LegacyVersion::Tls1_0, b""), Answer::Incomplete);
    }

    #[test]
    fn answer_is_bounded() {
        let warning = alert(1, 112);
        let mut bytes = Vec::new();
        while bytes.len() + warning.len() < MAX_ANSWER_BYTES {
            bytes.extend_from_slice(&warning);
        }
        assert_eq!(classify(LegacyVersion::Tls1_0, &bytes), Answer::Incomplete);
        bytes.extend_from_slice(&warning);
        assert!(is_error(&classify(LegacyVersion::Tls1_0, &bytes)));
        // A ServerHello announcing more than the cap is refused at once.
        let huge = handshake(0x0301, &[2, 0x01, 0x00, 0x00]);
        assert!(is_error(&classify(LegacyVersion::Tls1_0, &huge)));
    }

    proptest! {
        #[test]
        fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            for version in LegacyVersion::ALL {
                let _ = classify(version, &bytes);
            }
        }

        #[test]
        fn support_never_changes_with_more_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024),
            split in any::<proptest::sample::Index>(),
        ) {
            let (before, _) = bytes.split_at(split.index(bytes.len() + 1));
            for version in LegacyVersion::ALL {
                // The support stays; a "not TLS" detail may show more bytes.
                if let Answer::Verdict(early, _) = classify(version, before) {
                    let Answer::Verdict(later, _) = classify(version, &bytes) else {
                        return Err(TestCaseError::fail("verdict lost"));
                    };
                    prop_assert_eq!(early, later);
                }
            }
        }

        #[test]
        fn classify_never_panics_inside_records(
            kind in 0x14u8..=0x18,
            minor in 0u8..=4,
            payload in proptest::collection::vec(any::<u8>(), 0..600),
            extra in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = record(kind, 0x0300 | u16::from(minor), &payload);
            bytes.extend_from_slice(&extra);
            for version in LegacyVersion::ALL {
                let _ = classify(version, &bytes);
            }
        }

        #[test]
        fn any_server_hello_gets_a_verdict(
            version in prop_oneof![Just(0x0300u16), Just(0x0301), Just(0x0302), Just(0x0303), any::<u16>()],
            cipher in any::<u16>(),
            extensions in any::<bool>(),
        ) {
            let bytes = handshake(0x0301, &server_hello_msg(version, cipher, extensions));
            for offered in LegacyVersion::ALL {
                prop_assert!(matches!(classify(offered, &bytes), Answer::Verdict(..)));
            }
        }
    }

    /// Run the driver against a peer on an in-memory pipe.
    async fn drive<F, Fut>(
        version: LegacyVersion,
        timeout: Duration,
        peer: F,
    ) -> (VersionSupport, Option<String>)
    where
        F: FnOnce(tokio::io::DuplexStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(peer(theirs));
        let result = test_version(&mut ours, version, Some("mx.example.it"), timeout).await;
        drop(ours);
        peer.await.expect("peer task");
        result
    }

    /// Read one record (the ClientHello) from the pipe.
    async fn read_hello(stream: &mut tokio::io::DuplexStream) -> Vec<u8> {
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).await.expect("hello header");
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.expect("hello body");
        let mut hello = header.to_vec();
        hello.extend_from_slice(&body);
        hello
    }

    #[tokio::test]
    async fn driver_reports_supported() {
        let result = drive(
            LegacyVersion::Tls1_0,
            Duration::from_secs(5),
            |mut s| async move {
                let hello = read_hello(&mut s).await;
                assert_eq!(hello.get(..3), Some(&[0x16, 0x03, 0x01][..]));
                let answer = handshake(0x0301, &server_hello_msg(0x0301, 0x002f, true));
                // Trickled byte by byte: the driver must keep reading.
                for byte in answer {
                    s.write_all(&[byte]).await.expect("write");
                }
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest).await;
            },
        )
        .await;
        assert_eq!(
            result,
            (
                VersionSupport::Supported,
                Some("TLS_RSA_WITH_AES_128_CBC_SHA".into())
            )
        );
    }

    #[tokio::test]
    async fn driver_treats_close_as_not_supported() {
        let result = drive(
            LegacyVersion::Ssl3,
            Duration::from_secs(5),
            |mut s| async move {
                let _ = read_hello(&mut s).await;
            },
        )
        .await;
        assert_eq!(
            result,
            (
                VersionSupport::NotSupported,
                Some("connection closed".into())
            )
        );
    }

    #[tokio::test]
    async fn driver_times_out() {
        let result = drive(
            LegacyVersion::Tls1_1,
            Duration::from_millis(200),
            |mut s| async move {
                let _ = read_hello(&mut s).await;
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest).await;
            },
        )
        .await;
        assert_eq!(result, (VersionSupport::Error, Some("timeout".into())));
    }

    #[tokio::test]
    async fn driver_reports_smtp_text_as_error() {
        let result = drive(
            LegacyVersion::Tls1_0,
            Duration::from_secs(5),
            |mut s| async move {
                let _ = read_hello(&mut s).await;
                s.write_all(b"500 5.5.1 what is this\r\n")
                    .await
                    .expect("write");
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest).await;
            },
        )
        .await;
        assert_eq!(
            result,
            (
                VersionSupport::Error,
                Some("not TLS: \"500 5.5.1 what is this\"".into())
            )
        );
    }

    #[tokio::test]
    async fn driver_caps_the_answer() {
        let result = drive(
            LegacyVersion::Tls1_0,
            Duration::from_secs(5),
            |mut s| async move {
                let _ = read_hello(&mut s).await;
                let warning = alert(1, 112);
                for _ in 0..(2 * MAX_ANSWER_BYTES / warning.len()) {
                    if s.write_all(&warning).await.is_err() {
                        break;
                    }
                }
            },
        )
        .await;
        assert_eq!(result.0, VersionSupport::Error, "{result:?}");
    }
}
