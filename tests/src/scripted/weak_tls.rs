//! A scripted server with every weakness no lab MTA can be configured to
//! have (a fake, said so: Debian's OpenSSL and GnuTLS have no SSLv2, RC4,
//! export suites or compression, and always send renegotiation_info and
//! honour TLS_FALLBACK_SCSV). A script of the scripted fake
//! ([`crate::scripted`]): SMTP up to STARTTLS, then one record read and a
//! canned answer:
//! - an SSLv2 CLIENT-HELLO gets an SSLv2 SERVER-HELLO (DROWN);
//! - a ClientHello for TLS 1.0 or TLS 1.2 (or above: TLS 1.2 is chosen) gets
//!   a ServerHello picking, in the server's order, RC4-SHA, EXPORT RC4-40,
//!   3DES, AES128-SHA, whatever was offered first of those; DEFLATE when
//!   offered; no extensions at all (no secure renegotiation); the fallback
//!   SCSV is ignored;
//! - anything else gets a fatal alert.
//!   No handshake is ever completed.

use crate::scripted::sslv3::{alert, parse_client_hello, server_hello_for};
use crate::scripted::{Script, Tls};

/// Host name in the greeting (see [`crate::plan::MX_WEAKTLS`]).
pub const HOST: &str = "mx-weaktls.lab.test";
/// The suites it accepts, in its order of preference.
pub const SUITES: [u16; 4] = [0x0005, 0x0003, 0x000a, 0x002f];

const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

/// An SSLv2 SERVER-HELLO (message type 4) with an empty certificate and
/// one cipher spec (SSL_CK_RC4_128_WITH_MD5); never followed by anything.
const SSLV2_SERVER_HELLO: [u8; 16] = [
    0x80, 0x0e, 4, 0, 1, 0x00, 0x02, 0, 0, 0, 3, 0, 16, 0x01, 0x00, 0x80,
];

pub fn script() -> Script {
    Script::smtp(
        HOST,
        Tls::Answer {
            answer,
            then: Vec::new(),
        },
    )
}

fn answer(record: &[u8]) -> Vec<u8> {
    if record.first().is_some_and(|b| b & 0x80 != 0) {
        return SSLV2_SERVER_HELLO.to_vec();
    }
    let Some(hello) = parse_client_hello(record) else {
        return alert(0x0301, ALERT_PROTOCOL_VERSION);
    };
    let version = match hello.version {
        0x0301 => 0x0301,
        v if v >= 0x0303 => 0x0303,
        _ => return alert(0x0301, ALERT_PROTOCOL_VERSION),
    };
    let compression = u8::from(hello.compression.contains(&1));
    match SUITES.iter().find(|s| hello.suites.contains(s)) {
        Some(&suite) => server_hello_for(version, suite, compression),
        None => alert(version, ALERT_HANDSHAKE_FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslv2_and_garbage() {
        assert_eq!(answer(&[0x80, 0x2e, 1]), SSLV2_SERVER_HELLO.to_vec());
        assert_eq!(answer(b"QUIT\r\n"), alert(0x0301, ALERT_PROTOCOL_VERSION));
    }
}
