//! ROBOT (the Return Of Bleichenbacher's Oracle Threat, `--tls-depth
//! vulns`; intrusive, opt-in): does the server answer differently to RSA
//! key exchanges whose PKCS#1 v1.5 padding is wrong in different ways? A
//! server that does is a padding oracle: its RSA key can be made to decrypt
//! or sign for an attacker.
//!
//! One session per payload (the five of the ROBOT paper's `robot-detect`,
//! which sslyze and testssl.sh send too): a hello offering only RSA key
//! exchange, the server's first flight up to ServerHelloDone, then a
//! ClientKeyExchange carrying the payload encrypted to the leaf's RSA key,
//! a ChangeCipherSpec and a Finished of garbage. The answer is the first
//! thing that comes back: an alert (its code), another record (its type), a
//! close, a reset or nothing before the wait ends. Whatever the server sent
//! is looked at for that and dropped.
//!
//! [`Oracle`] (sans-IO) plans the sessions and decides: five sessions; when
//! every answer is the same, no oracle; when they differ, the five again,
//! and the server is vulnerable only when the second round repeats the
//! first (a strong oracle when the three malformed paddings are told apart,
//! a weak one when only the valid one stands out, as `robot-detect`
//! says). At most ten sessions; one when RSA key exchange is refused.

use std::fmt;
use std::time::Duration;

use mxscope_common::{HandshakeFailure, Tested};
use num_bigint::BigUint;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::catalog::{self, DepthVersion};
use super::hello::{self, Hello};
use crate::tls::exchange::{send_and_read, ReadEnd};
use crate::tls::first_flight::{self, Flight, MAX_FLIGHT_BYTES};
use crate::tls::legacy::{alert_name, LegacyVersion};

/// One of the five malformed (or not) premaster secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `00 02 <padding> 00 <version> <secret>`: well formed.
    Valid,
    /// `41 17 …`: the wrong first two bytes.
    WrongFirstBytes,
    /// The `00` separator too late: a 46-byte secret is not 48.
    Misplaced00,
    /// No `00` separator at all.
    No00,
    /// Well formed with the wrong client version in the secret.
    WrongVersion,
}

impl Payload {
    pub const ALL: [Self; 5] = [
        Self::Valid,
        Self::WrongFirstBytes,
        Self::Misplaced00,
        Self::No00,
        Self::WrongVersion,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Valid => "valid padding",
            Self::WrongFirstBytes => "wrong first bytes",
            Self::Misplaced00 => "00 misplaced",
            Self::No00 => "no 00",
            Self::WrongVersion => "wrong version",
        }
    }

    /// The plaintext for a modulus of `k` bytes (`k` ≥ [`MIN_MODULUS`]),
    /// with `version` as the client version a well-formed one carries.
    pub fn plaintext(self, k: usize, version: u16) -> Vec<u8> {
        let secret: Vec<u8> = (0..46u8).map(|i| (0xa0 ^ i.wrapping_mul(3)) | 1).collect();
        let padding: Vec<u8> = (0..k.saturating_sub(51))
            .map(|i| if i % 2 == 0 { 0xab } else { 0xcd })
            .collect();
        let [hi, lo] = version.to_be_bytes();
        let mut out = Vec::with_capacity(k);
        match self {
            Self::WrongFirstBytes => out.extend_from_slice(&[0x41, 0x17]),
            _ => out.extend_from_slice(&[0x00, 0x02]),
        }
        out.extend_from_slice(&padding);
        match self {
            Self::Valid | Self::WrongFirstBytes => out.extend_from_slice(&[0x00, hi, lo]),
            Self::Misplaced00 => out.push(0x11),
            Self::No00 => out.extend_from_slice(&[0x11, 0x11, 0x11]),
            Self::WrongVersion => out.extend_from_slice(&[0x00, 0x02, 0x02]),
        }
        out.extend_from_slice(&secret);
        if self == Self::Misplaced00 {
            out.extend_from_slice(&[0x00, 0x11]);
        }
        out
    }
}

/// An RSA public key as the leaf gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

/// Smallest and largest moduli encrypted to (bytes): 512 to 8192 bits.
const MIN_MODULUS: usize = 64;
const MAX_MODULUS: usize = 1024;
/// Largest public exponent taken (bytes): real ones are 65537 or below
/// 2^32; a larger one would make the encryption a cost the peer chose.
const MAX_EXPONENT: usize = 4;

impl RsaKey {
    /// The leaf's RSA key, `None` when it is not RSA.
    pub fn from_leaf(der: &[u8]) -> Option<Self> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        use x509_parser::public_key::PublicKey;
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        match cert.public_key().parsed().ok()? {
            PublicKey::RSA(rsa) => Some(Self {
                modulus: trim(rsa.modulus).to_vec(),
                exponent: trim(rsa.exponent).to_vec(),
            }),
            _ => None,
        }
    }

    /// `plaintext`^e mod n, as many bytes as the modulus; `None` for a key
    /// outside the bounds above.
    pub fn encrypt(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let k = self.modulus.len();
        if !(MIN_MODULUS..=MAX_MODULUS).contains(&k)
            || self.exponent.is_empty()
            || self.exponent.len() > MAX_EXPONENT
        {
            return None;
        }
        let n = BigUint::from_bytes_be(&self.modulus);
        let e = BigUint::from_bytes_be(&self.exponent);
        let c = BigUint::from_bytes_be(plaintext)
            .modpow(&e, &n)
            .to_bytes_be();
        let mut out = vec![0u8; k.saturating_sub(c.len())];
        out.extend_from_slice(&c);
        Some(out)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The first thing the server sent after the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    Alert(u8),
    /// A record of another type (its type byte).
    Record(u8),
    Closed,
    Reset,
    /// Nothing before the wait ended.
    Silence,
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alert(code) => write!(f, "alert {}", alert_name(*code)),
            Self::Record(kind) => write!(f, "record of type {kind}"),
            Self::Closed => f.write_str("close"),
            Self::Reset => f.write_str("reset"),
            Self::Silence => f.write_str("silence"),
        }
    }
}

/// What one ROBOT session came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered the payload.
    Answered(Response),
    /// No RSA key exchange to attack: the hello was refused, or the leaf
    /// key is not RSA.
    NoRsa(String),
    /// No verdict from this session.
    Failed(String),
}

/// The ROBOT check of one target, sans-IO.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    answers: Vec<Response>,
    verdict: Option<(Tested, String)>,
}

impl Oracle {
    /// The next payload to send, `None` once decided.
    pub fn next(&self) -> Option<Payload> {
        if self.verdict.is_some() {
            return None;
        }
        Payload::ALL
            .get(self.answers.len() % Payload::ALL.len())
            .copied()
    }

    pub fn record(&mut self, outcome: Outcome) {
        if self.verdict.is_some() {
            return;
        }
        let response = match outcome {
            Outcome::NoRsa(why) if self.answers.is_empty() => {
                self.verdict = Some((Tested::No, format!("no RSA key exchange ({why})")));
                return;
            }
            Outcome::NoRsa(why) | Outcome::Failed(why) => {
                self.verdict = Some((Tested::Error, why));
                return;
            }
            Outcome::Answered(response) => response,
        };
        self.answers.push(response);
        let n = Payload::ALL.len();
        let (first, second) = self.answers.split_at(self.answers.len().min(n));
        if second.is_empty() && first.len() == n && first.iter().all(|r| *r == first[0]) {
            let verdict = format!("no oracle: every payload answered with {}", first[0]);
            self.verdict = Some((Tested::No, verdict));
        } else if second.len() == n {
            self.verdict = Some(if first == second {
                (Tested::Yes, describe(first))
            } else {
                let verdict = format!(
                    "inconsistent answers: {}; then {}",
                    list(first),
                    list(second)
                );
                (Tested::Error, verdict)
            });
        }
    }

    /// The verdict and its evidence, once decided.
    pub fn verdict(&self) -> Option<&(Tested, String)> {
        self.verdict.as_ref()
    }
}

/// "strong oracle: …" or "weak oracle: …", with the answers.
fn describe(answers: &[Response]) -> String {
    let of = |p: Payload| {
        Payload::ALL
            .iter()
            .position(|q| *q == p)
            .and_then(|i| answers.get(i))
    };
    let weak = of(Payload::WrongFirstBytes) == of(Payload::Misplaced00)
        && of(Payload::Misplaced00) == of(Payload::No00);
    let strength = if weak { "weak" } else { "strong" };
    format!("{strength} oracle: {}", list(answers))
}

fn list(answers: &[Response]) -> String {
    Payload::ALL
        .iter()
        .zip(answers)
        .map(|(p, r)| format!("{} → {r}", p.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The suites of the ROBOT hello: every RSA key exchange candidate of the
/// version (export ones aside: their key is not the leaf's).
pub fn rsa_suites(version: LegacyVersion) -> Vec<u16> {
    catalog::candidates(DepthVersion::Legacy(version))
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| {
            let name = catalog::suite_name(*id);
            name.starts_with("TLS_RSA_WITH_") && !name.contains("NULL")
        })
        .collect()
}

/// A ChangeCipherSpec and a Finished that no key can open, after the
/// ClientKeyExchange.
fn ccs_and_finished(record_version: u16) -> Vec<u8> {
    let [hi, lo] = record_version.to_be_bytes();
    let mut out = vec![0x14, hi, lo, 0, 1, 1, 0x16, hi, lo, 0, 80];
    out.extend((0..80u8).map(|i| i.wrapping_mul(37) ^ 0x5a));
    out
}

/// The ClientKeyExchange record carrying `encrypted`.
fn client_key_exchange(record_version: u16, encrypted: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(encrypted.len()).ok()?;
    let body = u32::from(len) + 2;
    let [_, b1, b2, b3] = body.to_be_bytes();
    let [hi, lo] = record_version.to_be_bytes();
    let record_len = u16::try_from(body + 4).ok()?.to_be_bytes();
    let mut out = vec![0x16, hi, lo, record_len[0], record_len[1], 0x10, b1, b2, b3];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(encrypted);
    Some(out)
}

/// Run one ROBOT session on a stream just past STARTTLS's 220, speaking
/// `version`, within `timeout`.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    payload: Payload,
    version: LegacyVersion,
    sni: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let deadline = Instant::now() + timeout;
    let suites = rsa_suites(version);
    let hello = hello::client_hello(&Hello {
        version: DepthVersion::Legacy(version),
        suites: &suites,
        sni,
        fallback: false,
        groups: None,
        heartbeat: false,
    });
    let flight = send_and_read(stream, &hello, deadline, MAX_FLIGHT_BYTES, 16 * 1024, |r| {
        match first_flight::parse(r) {
            Flight::Incomplete => None,
            Flight::Done(done) => Some(done),
        }
    })
    .await;
    let flight = match flight {
        Ok(Ok(flight)) => flight,
        Ok(Err(e)) if e.kind == HandshakeFailure::AlertReceived => {
            return Outcome::NoRsa(format!("the RSA hello got {}", e.detail))
        }
        Ok(Err(e)) => return Outcome::Failed(e.detail),
        Err(end) if end.is_reset_before_answer() || matches!(end, ReadEnd::Closed { after: 0 }) => {
            return Outcome::NoRsa("the RSA hello was refused".into())
        }
        Err(end) => return Outcome::Failed(format!("first flight: {end:?}")),
    };
    if !suites.contains(&flight.cipher) {
        return Outcome::Failed(format!(
            "the server picked {}, not offered",
            catalog::suite_name(flight.cipher)
        ));
    }
    let Some(key) = flight.chain.first().and_then(|der| RsaKey::from_leaf(der)) else {
        return Outcome::NoRsa("the leaf key is not RSA".into());
    };
    let plaintext = payload.plaintext(key.modulus.len(), version.wire());
    let Some(cke) = key
        .encrypt(&plaintext)
        .and_then(|c| client_key_exchange(flight.version, &c))
    else {
        return Outcome::Failed(format!(
            "an RSA key of {} bytes and a {}-byte exponent is not attacked",
            key.modulus.len(),
            key.exponent.len()
        ));
    };
    let mut probe = cke;
    probe.extend_from_slice(&ccs_and_finished(flight.version));
    let write = async {
        stream.write_all(&probe).await?;
        stream.flush().await
    };
    if !matches!(tokio::time::timeout_at(deadline, write).await, Ok(Ok(()))) {
        return Outcome::Failed("the key exchange could not be written".into());
    }
    Outcome::Answered(first_response(stream, deadline).await)
}

/// The first record header (and an alert's code) the server sends, or how
/// the connection ended; at most a few bytes are kept, and dropped here.
async fn first_response<S: AsyncRead + Unpin>(stream: &mut S, until: Instant) -> Response {
    let mut head: Vec<u8> = Vec::with_capacity(16);
    let mut buf = [0u8; 512];
    loop {
        match head.first() {
            Some(0x15) if head.len() >= 7 => return Response::Alert(head[6]),
            Some(&kind) if kind != 0x15 => return Response::Record(kind),
            _ => {}
        }
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return Response::Silence,
            Ok(Ok(0)) => return Response::Closed,
            Ok(Err(_)) => return Response::Reset,
            Ok(Ok(n)) => {
                let take = n.min(16usize.saturating_sub(head.len()));
                head.extend_from_slice(buf.get(..take).unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests;
