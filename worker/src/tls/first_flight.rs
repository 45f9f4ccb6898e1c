//! TLS facts from the server's first flight, for servers rustls cannot
//! finish a handshake with (DESIGN §4, "what an OpenSSL MTA can talk to, we
//! measure").
//!
//! After STARTTLS's `220`, send the permissive TLS 1.2 ClientHello of
//! [`legacy::client_hello`] (TLS 1.0–1.2; ECDHE, DHE and RSA key exchange;
//! GCM, CBC, 3DES, RC4) and read ServerHello, Certificate, ServerKeyExchange
//! up to ServerHelloDone. No key is ever derived; the caller drops the
//! connection afterwards.
//!
//! Sans-IO core: [`parse`] reads what came so far and says
//! [`Flight::Incomplete`] until it can decide; [`read`] is the thin driver.

use std::time::Duration;

use mxscope_common::{HandshakeFailure, KeyExchange, TlsFacts, TlsSource};
use tls_parser::nom::Err as NomErr;
use tls_parser::{parse_tls_raw_record, TlsCipherSuite, TlsRecordType, MAX_RECORD_LEN};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::tls::cert;
use crate::tls::exchange::{send_and_read, ReadEnd};
use crate::tls::handshake::{self as tls, TlsContext};
use crate::tls::legacy::{self, LegacyVersion};

/// Most bytes of a first flight: real chains stay far below this; more is
/// [`HandshakeFailure::Oversized`], not a longer wait.
pub const MAX_FLIGHT_BYTES: usize = 128 * 1024;
/// Most certificates kept from one chain.
pub const MAX_CHAIN: usize = 16;

const HANDSHAKE_HELLO_REQUEST: u8 = 0;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const HANDSHAKE_CERTIFICATE: u8 = 11;
const HANDSHAKE_SERVER_KEY_EXCHANGE: u8 = 12;
const HANDSHAKE_CERTIFICATE_REQUEST: u8 = 13;
const HANDSHAKE_SERVER_HELLO_DONE: u8 = 14;
const HANDSHAKE_CERTIFICATE_STATUS: u8 = 22;

/// What the first flight told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstFlight {
    /// Wire version the server chose (0x0301 = TLS 1.0).
    pub version: u16,
    pub cipher: u16,
    /// Leaf first, as sent.
    pub chain: Vec<Vec<u8>>,
    /// Named group of an ECDHE ServerKeyExchange.
    pub group: Option<u16>,
    /// Prime size of a DHE ServerKeyExchange, in bits.
    pub dh_bits: Option<u32>,
    /// The DHE group's name, when its prime is a known one.
    pub dh_group: Option<&'static str>,
}

impl FirstFlight {
    /// `TLSv1.0` style name of the chosen version.
    pub fn version_name(&self) -> String {
        legacy::version_name(self.version)
    }

    /// IANA name of the chosen suite, or its number.
    pub fn cipher_name(&self) -> String {
        TlsCipherSuite::from_id(self.cipher)
            .map_or_else(|| format!("0x{:04x}", self.cipher), |s| s.name.to_owned())
    }

    /// The group's name, spelled as rustls reports it (`X25519`, `secp256r1`).
    pub fn group_name(&self) -> Option<String> {
        self.group.map(|group| match group {
            0x0017 => "secp256r1".to_owned(),
            0x0018 => "secp384r1".to_owned(),
            0x0019 => "secp521r1".to_owned(),
            0x001d => "X25519".to_owned(),
            0x001e => "X448".to_owned(),
            other => format!("group 0x{other:04x}"),
        })
    }
}

impl FirstFlight {
    /// The record's TLS facts: the chain verified offline with the same
    /// roots and logic as a handshake, name match for every MX name.
    pub fn facts(&self, context: &TlsContext, sni: &str, names: &[String]) -> TlsFacts {
        let ders: Vec<&[u8]> = self.chain.iter().map(Vec::as_slice).collect();
        let chain = cert::analyse_chain(&ders);
        let (verification, verification_detail) =
            tls::promote_self_signed(context.verify_offline(&self.chain, sni), &chain);
        let cipher = self.cipher_name();
        let key_exchange = KeyExchange::of_suite(&cipher);
        TlsFacts {
            version: self.version_name(),
            group: self.group_name(),
            verification,
            verification_detail,
            name_match: tls::name_match(ders.first().copied(), names),
            chain,
            source: TlsSource::FirstFlight,
            key_exchange: Some(key_exchange),
            forward_secrecy: Some(key_exchange.forward_secret()),
            dh_bits: self.dh_bits,
            dh_group: self.dh_group.map(str::to_owned),
            signature_scheme: None,
            ocsp: None,
            cipher,
        }
    }
}

/// Why no facts came from the first flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlightError {
    pub kind: HandshakeFailure,
    /// The fatal alert's name, for [`HandshakeFailure::AlertReceived`].
    pub alert: Option<String>,
    pub detail: String,
}

impl FlightError {
    fn new(kind: HandshakeFailure, detail: impl Into<String>) -> Self {
        Self {
            kind,
            alert: None,
            detail: detail.into(),
        }
    }
}

/// What [`parse`] makes of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flight {
    /// Read more (within the deadline and [`MAX_FLIGHT_BYTES`]).
    Incomplete,
    Done(Result<FirstFlight, FlightError>),
}

fn fail(kind: HandshakeFailure, detail: impl Into<String>) -> Flight {
    Flight::Done(Err(FlightError::new(kind, detail)))
}

/// Decide what `received` (everything read after the hello) says. Only the
/// first [`MAX_FLIGHT_BYTES`] count, and the decision is made at the first
/// record that allows one, so more bytes never change it.
pub fn parse(received: &[u8]) -> Flight {
    let received = received.get(..MAX_FLIGHT_BYTES).unwrap_or(received);
    let mut rest = received;
    let mut handshake: Vec<u8> = Vec::new();
    loop {
        if rest.is_empty() {
            break;
        }
        if let Some(&first) = rest.first() {
            if !(0x14..=0x18).contains(&first) {
                return fail(HandshakeFailure::InvalidMessage, "not TLS");
            }
        }
        if let (Some(&hi), Some(&lo)) = (rest.get(3), rest.get(4)) {
            if u16::from_be_bytes([hi, lo]) > MAX_RECORD_LEN {
                return fail(HandshakeFailure::InvalidMessage, "oversized TLS record");
            }
        }
        let (tail, record) = match parse_tls_raw_record(rest) {
            Ok(parsed) => parsed,
            Err(NomErr::Incomplete(_)) => break,
            Err(_) => return fail(HandshakeFailure::InvalidMessage, "malformed TLS record"),
        };
        rest = tail;
        match record.hdr.record_type {
            TlsRecordType::Alert => {
                if let [level, code, ..] = *record.data {
                    if level == 2 || code == 0 {
                        return Flight::Done(Err(FlightError {
                            kind: HandshakeFailure::AlertReceived,
                            alert: Some(legacy::alert_name(code)),
                            detail: format!("alert {}", legacy::alert_name(code)),
                        }));
                    }
                }
            }
            TlsRecordType::Handshake => {
                handshake.extend_from_slice(record.data);
                if let Some(done) = messages(&handshake) {
                    return Flight::Done(done);
                }
            }
            other => {
                return fail(
                    HandshakeFailure::InvalidMessage,
                    format!("unexpected {other:?} record in the first flight"),
                )
            }
        }
    }
    if received.len() >= MAX_FLIGHT_BYTES {
        fail(
            HandshakeFailure::Oversized,
            format!("first flight over {MAX_FLIGHT_BYTES} bytes"),
        )
    } else {
        Flight::Incomplete
    }
}

/// Walk the joined handshake messages; `None` until ServerHelloDone.
fn messages(mut bytes: &[u8]) -> Option<Result<FirstFlight, FlightError>> {
    let mut flight: Option<FirstFlight> = None;
    loop {
        let &[kind, a, b, c] = bytes.get(..4)? else {
            return None;
        };
        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        if len > MAX_FLIGHT_BYTES {
            return Some(Err(FlightError::new(
                HandshakeFailure::Oversized,
                format!("handshake message of {len} bytes"),
            )));
        }
        let body = bytes.get(4..4 + len)?;
        bytes = bytes.get(4 + len..).unwrap_or_default();
        let malformed = |what: &str| {
            Some(Err(FlightError::new(
                HandshakeFailure::InvalidMessage,
                format!("malformed {what}"),
            )))
        };
        match (kind, flight.as_mut()) {
            (HANDSHAKE_HELLO_REQUEST, None) => {}
            (HANDSHAKE_SERVER_HELLO, None) => match server_hello(body) {
                Some(hello) => flight = Some(hello),
                None => return malformed("ServerHello"),
            },
            (HANDSHAKE_CERTIFICATE, Some(flight)) => match certificates(body) {
                Some(chain) => flight.chain = chain,
                None => return malformed("Certificate"),
            },
            (HANDSHAKE_SERVER_KEY_EXCHANGE, Some(flight)) => key_exchange(body, flight),
            (HANDSHAKE_CERTIFICATE_REQUEST | HANDSHAKE_CERTIFICATE_STATUS, Some(_)) => {}
            (HANDSHAKE_SERVER_HELLO_DONE, Some(done)) => return Some(Ok(done.clone())),
            (other, _) => {
                return Some(Err(FlightError::new(
                    HandshakeFailure::InvalidMessage,
                    format!("unexpected handshake message {other} in the first flight"),
                )))
            }
        }
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn be24(bytes: &[u8], at: usize) -> Option<usize> {
    let [a, b, c] = [*bytes.get(at)?, *bytes.get(at + 1)?, *bytes.get(at + 2)?];
    Some(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
}

/// version(2) random(32) session_id(1+n) cipher(2) compression(1) ...
fn server_hello(body: &[u8]) -> Option<FirstFlight> {
    let version = be16(body, 0)?;
    let session_len = usize::from(*body.get(34)?);
    let cipher = be16(body, 35 + session_len)?;
    body.get(37 + session_len)?;
    Some(FirstFlight {
        version,
        cipher,
        chain: Vec::new(),
        group: None,
        dh_bits: None,
        dh_group: None,
    })
}

/// certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>.
fn certificates(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = be24(body, 0)?;
    let mut list = body.get(3..3 + total)?;
    let mut chain = Vec::new();
    while !list.is_empty() {
        let len = be24(list, 0)?;
        let der = list.get(3..3 + len)?;
        if chain.len() < MAX_CHAIN {
            chain.push(der.to_vec());
        }
        list = list.get(3 + len..)?;
    }
    Some(chain)
}

/// ECDHE: curve_type 3 (named_curve) then the group; DHE: dh_p<1..2^16-1>
/// first. The suite says which (RFC 4492 §5.4, RFC 5246 §7.4.3); anything
/// else is left unknown.
fn key_exchange(body: &[u8], flight: &mut FirstFlight) {
    let name = flight.cipher_name();
    if name.contains("_ECDHE_") {
        if body.first() == Some(&3) {
            flight.group = be16(body, 1);
        }
    } else if name.contains("_DHE_") {
        if let Some(len) = be16(body, 0) {
            if let Some(prime) = body.get(2..2 + usize::from(len)) {
                flight.dh_group = crate::tls::dh_groups::name(prime);
                let significant: Vec<&u8> = prime.iter().skip_while(|b| **b == 0).collect();
                flight.dh_bits = significant.first().map(|top| {
                    let bytes = u32::try_from(significant.len()).unwrap_or(u32::MAX);
                    bytes.saturating_mul(8) - top.leading_zeros()
                });
            }
        }
    }
}

/// Send the permissive hello with `sni` and read the first flight, within
/// `timeout` in all. The stream is left mid-handshake: drop it.
pub async fn read<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    sni: Option<&str>,
    timeout: Duration,
) -> Result<FirstFlight, FlightError> {
    let deadline = Instant::now() + timeout;
    let hello = legacy::client_hello(LegacyVersion::Tls1_2, sni);
    let decide = |received: &[u8]| match parse(received) {
        Flight::Done(done) => Some(done),
        Flight::Incomplete => None,
    };
    let closed = |after: usize| format!("connection closed after {after} bytes");
    match send_and_read(
        stream,
        &hello,
        deadline,
        MAX_FLIGHT_BYTES,
        16 * 1024,
        decide,
    )
    .await
    {
        Ok(done) => done,
        Err(ReadEnd::Timeout) => Err(FlightError::new(HandshakeFailure::Timeout, "timeout")),
        Err(ReadEnd::WriteFailed(e) | ReadEnd::ReadFailed { error: e, .. }) => {
            Err(FlightError::new(HandshakeFailure::Closed, e.to_string()))
        }
        Err(ReadEnd::Closed { after } | ReadEnd::Full { after }) => {
            Err(FlightError::new(HandshakeFailure::Closed, closed(after)))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 3, 1];
        out.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut out = vec![kind, len[1], len[2], len[3]];
        out.extend_from_slice(body);
        out
    }

    fn hello(version: u16, cipher: u16) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&cipher.to_be_bytes());
        body.push(0);
        message(HANDSHAKE_SERVER_HELLO, &body)
    }

    fn certs(ders: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for der in ders {
            list.extend_from_slice(&u32::try_from(der.len()).unwrap().to_be_bytes()[1..]);
            list.extend_from_slice(der);
        }
        let mut body = u32::try_from(list.len()).unwrap().to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        message(HANDSHAKE_CERTIFICATE, &body)
    }

    #[test]
    fn rsa_flight_over_two_records() {
        let mut handshake = hello(0x0301, 0x002f);
        handshake.extend(certs(&[b"leaf", b"ca"]));
        handshake.extend(message(HANDSHAKE_SERVER_HELLO_DONE, &[]));
        let (a, b) = handshake.split_at(20);
        let mut wire = record(22, a);
        assert_eq!(parse(&wire), Flight::Incomplete);
        wire.extend(record(22, b));
        let Flight::Done(Ok(flight)) = parse(&wire) else {
            panic!("expected facts");
        };
        assert_eq!(flight.version_name(), "TLSv1.0");
        assert_eq!(flight.cipher_name(), "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(flight.chain, [b"leaf".to_vec(), b"ca".to_vec()]);
        assert_eq!((flight.group, flight.dh_bits), (None, None));
    }

    #[test]
    fn ecdhe_and_dhe_parameters() {
        let mut ecdhe = hello(0x0303, 0xc013);
        ecdhe.extend(certs(&[b"leaf"]));
        ecdhe.extend(message(HANDSHAKE_SERVER_KEY_EXCHANGE, &[3, 0, 0x17, 1, 4]));
        ecdhe.extend(message(HANDSHAKE_SERVER_HELLO_DONE, &[]));
        let Flight::Done(Ok(flight)) = parse(&record(22, &ecdhe)) else {
            panic!("expected facts");
        };
        assert_eq!(flight.group_name().as_deref(), Some("secp256r1"));

        let mut prime = vec![0x00, 0x01, 0x00];
        prime[1] = 0x01; // 2 bytes of prime after a zero: 0x01 0x00 → 9 bits
        let mut ske = u16::try_from(prime.len()).unwrap().to_be_bytes().to_vec();
        ske.extend_from_slice(&prime);
        let mut dhe = hello(0x0303, 0x0033);
        dhe.extend(certs(&[b"leaf"]));
        dhe.extend(message(HANDSHAKE_SERVER_KEY_EXCHANGE, &ske));
        dhe.extend(message(HANDSHAKE_SERVER_HELLO_DONE, &[]));
        let Flight::Done(Ok(flight)) = parse(&record(22, &dhe)) else {
            panic!("expected facts");
        };
        assert_eq!(flight.dh_bits, Some(9));
    }

    #[test]
    fn alerts_and_garbage_end_the_flight() {
        let Flight::Done(Err(alert)) = parse(&record(21, &[2, 40])) else {
            panic!("expected an alert");
        };
        assert_eq!(alert.kind, HandshakeFailure::AlertReceived);
        assert_eq!(alert.alert.as_deref(), Some("handshake_failure"));
        let Flight::Done(Err(text)) = parse(b"454 4.7.0 TLS not available\r\n") else {
            panic!("expected not TLS");
        };
        assert_eq!(text.kind, HandshakeFailure::InvalidMessage);
        let mut early = record(22, &certs(&[b"x"]));
        early.truncate(early.len());
        assert!(
            matches!(parse(&early), Flight::Done(Err(_))),
            "Certificate before ServerHello"
        );
    }

    #[test]
    fn a_huge_chain_is_oversized_not_awaited() {
        let mut wire = record(22, &hello(0x0303, 0x002f));
        let big = message(HANDSHAKE_CERTIFICATE, &[0; 4]);
        let mut header = big[..1].to_vec();
        header.extend_from_slice(&[0x10, 0, 0]); // a 1 MiB Certificate message
        wire.extend(record(22, &header));
        assert!(matches!(
            parse(&wire),
            Flight::Done(Err(FlightError {
                kind: HandshakeFailure::Oversized,
                ..
            }))
        ));
    }

    proptest! {
        #[test]
        fn never_panics_and_decides_once(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            split in 0usize..2048,
        ) {
            let before = bytes.get(..split.min(bytes.len())).unwrap_or_default();
            if let Flight::Done(early) = parse(before) {
                let Flight::Done(later) = parse(&bytes) else {
                    panic!("decision lost after more bytes");
                };
                prop_assert_eq!(early, later);
            }
        }
    }
}
