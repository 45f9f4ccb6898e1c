//! A scripted server that answers like one vulnerable to Heartbleed and to
//! CCS injection (a fake, said so: no server the lab can install is
//! vulnerable, Debian's OpenSSL and GnuTLS have no heartbeat support and
//! refuse an early ChangeCipherSpec). A script of the scripted fake
//! ([`crate::scripted`]) that answers record after record:
//! - a ClientHello for TLS 1.2 (or above) gets ServerHello (RSA AES128-SHA,
//!   with the heartbeat extension when the hello offered it, and
//!   renegotiation_info), an empty Certificate and ServerHelloDone;
//! - a heartbeat request gets a heartbeat response of 64 canned bytes (no
//!   memory of anything: a pattern), as a vulnerable server would over-read;
//! - a ChangeCipherSpec gets silence, as a vulnerable server takes it;
//! - anything else gets a fatal alert.

use crate::scripted::{Script, Tls};
use crate::sslv3::{alert, parse_client_hello};

/// Host name in the greeting (see [`crate::plan::MX_VULN`]).
pub const HOST: &str = "mx-vuln.lab.test";

pub fn script() -> Script {
    Script::smtp(HOST, Tls::Records { answer })
}

fn answer(record: &[u8]) -> Vec<u8> {
    match record.first() {
        Some(0x16) => match parse_client_hello(record) {
            Some(hello) if hello.version >= 0x0303 => first_flight(offers_heartbeat(record)),
            _ => alert(0x0303, 70),
        },
        Some(0x18) => {
            let mut response = vec![0x18, 3, 3, 0, 67, 2, 0, 64];
            response.extend((0..64u8).map(|i| i.wrapping_mul(7)));
            response
        }
        Some(0x14) => Vec::new(),
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

fn first_flight(heartbeat: bool) -> Vec<u8> {
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
    let mut handshake = vec![2, 0];
    handshake.extend_from_slice(&u16::try_from(hello.len()).unwrap_or(0).to_be_bytes());
    handshake.extend_from_slice(&hello);
    handshake.extend_from_slice(&[11, 0, 0, 3, 0, 0, 0]); // Certificate: empty list
    handshake.extend_from_slice(&[14, 0, 0, 0]); // ServerHelloDone
    let mut record = vec![0x16, 3, 3];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap_or(0).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}
