//! Scripted SSLv3 server (DESIGN §6): SSLv3 is compiled out of Debian's
//! OpenSSL, so no lab MTA can offer it. This one is a script of the
//! scripted fake ([`crate::scripted`]): SMTP up to STARTTLS, then one TLS
//! record read: a ClientHello whose
//! `client_version` is SSLv3 (0x0300) gets a canned SSLv3 ServerHello; any
//! other record, including a modern TLS 1.2/1.3 hello, gets a fatal
//! `protocol_version` alert. Either way the connection then closes: no
//! handshake is ever completed.
//!
//! The ClientHello is parsed by hand here, not with the worker's code, so
//! the probe is checked against an independent reading of the bytes.

use tokio::net::TcpListener;

use crate::scripted::{serve_script, Script, Tls};

/// Host name in the greeting (see [`crate::plan::MX_SSL3`]).
pub const HOST: &str = "mx-ssl3.lab.test";
/// Cipher suites the canned ServerHello may choose, in order of preference:
/// TLS_RSA_WITH_AES_128_CBC_SHA, then AES_256_CBC_SHA, 3DES_EDE_CBC_SHA,
/// RC4_128_SHA.
pub const SUITES: [u16; 4] = [0x002f, 0x0035, 0x000a, 0x0005];

const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

/// The SSLv3 server as a script of the scripted fake: SMTP with STARTTLS,
/// then [`answer`] to the first TLS record, then a close.
pub fn script() -> Script {
    Script::smtp(
        HOST,
        Tls::Answer {
            answer,
            then: Vec::new(),
        },
    )
}

/// Serve [`script`] on `listener`, forever.
pub async fn serve(listener: TcpListener) {
    serve_script(listener, script()).await;
}

/// The canned answer to one record: an SSLv3 ServerHello or an alert.
fn answer(record: &[u8]) -> Vec<u8> {
    let record_version = match (record.get(1), record.get(2)) {
        (Some(&3), Some(&minor)) => u16::from_be_bytes([3, minor.min(3)]),
        _ => 0x0301,
    };
    match parse_client_hello(record) {
        Some(hello) if hello.version == 0x0300 => {
            match SUITES.iter().find(|s| hello.suites.contains(s)) {
                Some(&suite) => server_hello(suite),
                None => alert(0x0300, ALERT_HANDSHAKE_FAILURE),
            }
        }
        _ => alert(record_version, ALERT_PROTOCOL_VERSION),
    }
}

/// What the server looks at in a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `client_version`, the highest version offered.
    pub version: u16,
    /// Offered cipher suites.
    pub suites: Vec<u16>,
    /// Offered compression methods (0 null, 1 DEFLATE).
    pub compression: Vec<u8>,
}

/// Parse one whole TLS record holding a ClientHello; `None` for anything
/// else (other record types, other messages, truncated fields).
pub fn parse_client_hello(record: &[u8]) -> Option<ClientHello> {
    let mut r = Reader(record);
    if r.u8()? != 0x16 || r.u8()? != 3 {
        return None;
    }
    let _minor = r.u8()?;
    let record_len = usize::from(r.u16()?);
    let mut payload = Reader(r.take(record_len)?);
    if payload.u8()? != 1 {
        return None;
    }
    let len = usize::from(payload.u8()?) << 16 | usize::from(payload.u16()?);
    let mut body = Reader(payload.take(len)?);
    let version = body.u16()?;
    body.take(32)?; // random
    let session_id = usize::from(body.u8()?);
    body.take(session_id)?;
    let suites_len = usize::from(body.u16()?);
    let suites = body
        .take(suites_len)?
        .chunks_exact(2)
        .filter_map(|pair| match *pair {
            [hi, lo] => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        })
        .collect();
    let compression_len = usize::from(body.u8()?);
    let compression = body.take(compression_len)?.to_vec();
    Some(ClientHello {
        version,
        suites,
        compression,
    })
}

/// A bounds-checked big-endian reader.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes = self.take(2)?;
        Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
    }
}

/// An SSLv3 ServerHello record choosing `suite`: record and server version
/// 0x0300, a 32-byte session id, null compression, no extensions.
pub fn server_hello(suite: u16) -> Vec<u8> {
    server_hello_for(0x0300, suite, 0)
}

/// A ServerHello record for `version` choosing `suite` and `compression`,
/// a 32-byte session id, no extensions (so no renegotiation_info).
pub fn server_hello_for(version: u16, suite: u16, compression: u8) -> Vec<u8> {
    let [major, minor] = version.to_be_bytes();
    let mut body = vec![major, minor];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a)); // random
    body.push(32);
    body.extend((0..32u8).map(|i| i.wrapping_mul(11) ^ 0xa5)); // session id
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(compression);
    let mut record = vec![0x16, major, minor];
    record.extend_from_slice(&u16_len(body.len() + 4));
    record.push(2); // ServerHello
    record.push(0);
    record.extend_from_slice(&u16_len(body.len()));
    record.extend_from_slice(&body);
    record
}

/// A fatal alert record.
pub fn alert(record_version: u16, code: u8) -> Vec<u8> {
    let [major, minor] = record_version.to_be_bytes();
    vec![0x15, major, minor, 0, 2, 2, code]
}

/// Lengths here are of fixed, small messages.
fn u16_len(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(record_version: u16, client_version: u16, suites: &[u16]) -> Vec<u8> {
        let mut body = client_version.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&u16_len(suites.len() * 2));
        for s in suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut record = vec![0x16];
        record.extend_from_slice(&record_version.to_be_bytes());
        record.extend_from_slice(&u16_len(body.len() + 4));
        record.extend_from_slice(&[1, 0]);
        record.extend_from_slice(&u16_len(body.len()));
        record.extend_from_slice(&body);
        record
    }

    #[test]
    fn sslv3_hello_gets_server_hello() {
        let answer = answer(&hello(0x0300, 0x0300, &[0x0035, 0x002f]));
        assert_eq!(answer, server_hello(0x002f));
        assert_eq!(answer.get(..3), Some(&[0x16, 3, 0][..]));
        assert_eq!(answer.get(9..11), Some(&[3, 0][..]));
    }

    #[test]
    fn falls_back_to_other_suites() {
        assert_eq!(
            answer(&hello(0x0300, 0x0300, &[0x0005])),
            server_hello(0x0005)
        );
        assert_eq!(
            answer(&hello(0x0300, 0x0300, &[0xc013])),
            alert(0x0300, ALERT_HANDSHAKE_FAILURE)
        );
    }

    #[test]
    fn other_versions_get_protocol_version() {
        for (record_version, client_version) in
            [(0x0301, 0x0301), (0x0301, 0x0302), (0x0301, 0x0303)]
        {
            assert_eq!(
                answer(&hello(record_version, client_version, &[0x002f])),
                alert(0x0301, ALERT_PROTOCOL_VERSION)
            );
        }
        assert_eq!(
            answer(b"EHLO again\r\n"),
            alert(0x0301, ALERT_PROTOCOL_VERSION)
        );
        assert_eq!(answer(&[]), alert(0x0301, ALERT_PROTOCOL_VERSION));
    }

    #[test]
    fn truncated_hellos_do_not_parse() {
        let full = hello(0x0300, 0x0300, &[0x002f]);
        for end in 0..full.len() {
            assert_eq!(
                parse_client_hello(full.get(..end).unwrap_or_default()),
                None
            );
        }
        assert!(parse_client_hello(&full).is_some());
    }
}
