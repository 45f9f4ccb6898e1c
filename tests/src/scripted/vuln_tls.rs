//! A scripted server that answers like one vulnerable to Heartbleed, to
//! CCS injection and to ROBOT (a fake, said so: no server the lab can
//! install is vulnerable, Debian's OpenSSL and GnuTLS have no heartbeat
//! support, refuse an early ChangeCipherSpec and answer every RSA padding
//! alike). A script of the scripted fake ([`crate::scripted`]) that answers
//! record after record:
//! - a ClientHello for TLS 1.2 (or above) gets ServerHello (RSA AES128-SHA,
//!   with the heartbeat extension when the hello offered it, and
//!   renegotiation_info), its lab-CA certificate and ServerHelloDone;
//! - a heartbeat request gets a heartbeat response of 64 canned bytes (no
//!   memory of anything: a pattern), as a vulnerable server would over-read;
//! - a ChangeCipherSpec gets silence, as a vulnerable server takes it;
//! - a ClientKeyExchange is decrypted with the leaf's RSA key, and answered
//!   `bad_record_mac` when the plaintext starts `00 02`, `decrypt_error`
//!   when it does not: the padding oracle of a vulnerable server (a strong
//!   one: ROBOT's malformed paddings are told apart);
//! - anything else gets a fatal alert.

use std::sync::Arc;

use anyhow::Context as _;
use num_bigint::BigUint;

use crate::scripted::scripts::Leaf;
use crate::scripted::sslv3::{alert, parse_client_hello};
use crate::scripted::{Script, Tls};

/// Host name in the greeting (see [`crate::plan::MX_VULN`]).
pub const HOST: &str = "mx-vuln.lab.test";

const ALERT_BAD_RECORD_MAC: u8 = 20;
const ALERT_DECRYPT_ERROR: u8 = 51;

/// The fake's certificate and RSA private key.
struct Keys {
    leaf_der: Vec<u8>,
    modulus: BigUint,
    private_exponent: BigUint,
    modulus_len: usize,
}

/// The script, presenting `leaf` (an RSA key) and decrypting with it.
pub fn script(leaf: &Leaf) -> anyhow::Result<Script> {
    let leaf_der = leaf
        .chain()?
        .first()
        .context("the fake's chain is empty")?
        .to_vec();
    let pkcs8 = leaf.key()?.secret_der().to_vec();
    let (modulus, private_exponent) =
        rsa_private(&pkcs8).context("reading the fake's RSA key (PKCS#8)")?;
    let keys = Keys {
        leaf_der,
        modulus_len: modulus.len(),
        modulus: BigUint::from_bytes_be(&modulus),
        private_exponent: BigUint::from_bytes_be(&private_exponent),
    };
    let answer = Arc::new(move |record: &[u8]| answer(&keys, record));
    Ok(Script::smtp(HOST, Tls::Records { answer }))
}

fn answer(keys: &Keys, record: &[u8]) -> Vec<u8> {
    match (record.first(), record.get(5)) {
        (Some(0x16), Some(0x10)) => {
            // ClientKeyExchange: record header, handshake header, length.
            let encrypted = record.get(11..).unwrap_or_default();
            let plain = BigUint::from_bytes_be(encrypted)
                .modpow(&keys.private_exponent, &keys.modulus)
                .to_bytes_be();
            // Leading zeros are dropped: `00 02 …` reads as `02 …`, one
            // byte short of the modulus.
            let well_padded = plain.len() + 1 == keys.modulus_len && plain.first() == Some(&2);
            let code = if well_padded {
                ALERT_BAD_RECORD_MAC
            } else {
                ALERT_DECRYPT_ERROR
            };
            alert(0x0303, code)
        }
        (Some(0x16), _) => match parse_client_hello(record) {
            Some(hello) if hello.version >= 0x0303 => {
                first_flight(offers_heartbeat(record), &keys.leaf_der)
            }
            _ => alert(0x0303, 70),
        },
        (Some(0x18), _) => {
            let mut response = vec![0x18, 3, 3, 0, 67, 2, 0, 64];
            response.extend((0..64u8).map(|i| i.wrapping_mul(7)));
            response
        }
        (Some(0x14), _) => Vec::new(),
        _ => alert(0x0303, 10),
    }
}

/// Whether the hello carries the heartbeat extension (0x000f): a plain
/// search for its type and length 1 with mode 1 among the bytes.
fn offers_heartbeat(record: &[u8]) -> bool {
    record
        .windows(5)
        .any(|w| w == [0x00, 0x0f, 0x00, 0x01, 0x01])
}

fn u24(len: usize) -> [u8; 3] {
    let [_, a, b, c] = u32::try_from(len).unwrap_or(0).to_be_bytes();
    [a, b, c]
}

fn first_flight(heartbeat: bool, leaf_der: &[u8]) -> Vec<u8> {
    let mut extensions = vec![0xff, 0x01, 0x00, 0x01, 0x00];
    if heartbeat {
        extensions.extend_from_slice(&[0x00, 0x0f, 0x00, 0x01, 0x01]);
    }
    let mut hello = vec![3, 3];
    hello.extend((0..32u8).map(|i| i ^ 0x3c));
    hello.push(0); // no session id
    hello.extend_from_slice(&[0x00, 0x2f, 0]); // AES128-SHA, null compression
    hello.extend_from_slice(&u16::try_from(extensions.len()).unwrap_or(0).to_be_bytes());
    hello.extend_from_slice(&extensions);
    let mut handshake = vec![2];
    handshake.extend_from_slice(&u24(hello.len()));
    handshake.extend_from_slice(&hello);
    // Certificate: a list of one.
    handshake.push(11);
    handshake.extend_from_slice(&u24(leaf_der.len() + 6));
    handshake.extend_from_slice(&u24(leaf_der.len() + 3));
    handshake.extend_from_slice(&u24(leaf_der.len()));
    handshake.extend_from_slice(leaf_der);
    handshake.extend_from_slice(&[14, 0, 0, 0]); // ServerHelloDone
    let mut record = vec![0x16, 3, 3];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap_or(0).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// One DER element: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let bytes = rest.get(..n).filter(|_| n <= 4)?;
        let len = bytes.iter().fold(0usize, |a, b| a << 8 | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// (n, d) of a PKCS#8 RSA private key, without leading zeros.
fn rsa_private(pkcs8: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, info, _) = tlv(pkcs8)?;
    let (_, _version, rest) = tlv(info)?;
    let (_, _algorithm, rest) = tlv(rest)?;
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    let (_, fields, _) = tlv(key)?;
    let (_, _version, rest) = tlv(fields)?;
    let (_, n, rest) = tlv(rest)?;
    let (_, _e, rest) = tlv(rest)?;
    let (_, d, _) = tlv(rest)?;
    let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect();
    Some((strip(n), strip(d)))
}
