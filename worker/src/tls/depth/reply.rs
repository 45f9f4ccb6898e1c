//! What a depth hello's answer says: the server's pick (version, suite,
//! compression, renegotiation_info, extended master secret, the TLS 1.3
//! group), a refusal, or an error. Sans-IO: `None` until decided.

use super::catalog::DepthVersion;
pub use crate::tls::legacy::Pick;
use crate::tls::legacy::{first_message, read_server_hello, FirstMessage};

/// The answer to one hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Picked(Pick),
    /// An alert, or another version than asked: nothing offered is accepted.
    Refused(String),
    /// Not TLS, malformed, or a suite that was not offered.
    Error(String),
}

/// Decide what `received` says about a hello for `version` offering
/// `offered`; `None`: read more.
pub fn read(version: DepthVersion, offered: &[u16], received: &[u8]) -> Option<Reply> {
    let body = match first_message(received) {
        FirstMessage::Incomplete => return None,
        FirstMessage::Refused(detail) => return Some(Reply::Refused(detail)),
        FirstMessage::Error(detail) => return Some(Reply::Error(detail)),
        FirstMessage::ServerHello(body) => body,
    };
    Some(match read_server_hello(&body) {
        None => Reply::Error("malformed ServerHello".into()),
        Some(pick) if pick.version != version.wire() => Reply::Refused(format!(
            "server chose {}",
            crate::tls::legacy::version_name(pick.version)
        )),
        Some(pick) if !offered.contains(&pick.cipher) => Reply::Error(format!(
            "server chose cipher suite 0x{:04x}, which was not offered",
            pick.cipher
        )),
        Some(pick) => Reply::Picked(pick),
    })
}

/// What an SSLv2 CLIENT-HELLO got back: `Some(true)` for a SERVER-HELLO,
/// `Some(false)` for a TLS alert or anything else decided; `None`: read more.
pub fn read_sslv2(received: &[u8]) -> Option<bool> {
    let first = *received.first()?;
    if first & 0x80 != 0 {
        // Two-byte SSLv2 header, then the message type (4 = SERVER-HELLO).
        return Some(*received.get(2)? == 4);
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello_record(version: u16, cipher: u16, extensions: &[u8]) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&cipher.to_be_bytes());
        body.push(0);
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
        let mut hs = vec![2, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 3, 3, 0, hs.len() as u8];
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn a_pick_with_its_extensions() {
        let tls12 = DepthVersion::Legacy(crate::tls::legacy::LegacyVersion::Tls1_2);
        let ext = [0xff, 0x01, 0, 1, 0, 0x00, 0x17, 0, 0];
        let bytes = server_hello_record(0x0303, 0xc02f, &ext);
        assert_eq!(read(tls12, &[0xc02f], &bytes[..20]), None);
        let Some(Reply::Picked(pick)) = read(tls12, &[0xc02f], &bytes) else {
            panic!("no pick");
        };
        assert!(pick.renegotiation_info && pick.extended_master_secret);
        assert_eq!(pick.cipher, 0xc02f);
        assert!(matches!(
            read(tls12, &[0xc030], &bytes),
            Some(Reply::Error(_))
        ));
        let tls11 = DepthVersion::Legacy(crate::tls::legacy::LegacyVersion::Tls1_1);
        assert!(matches!(
            read(tls11, &[0xc02f], &bytes),
            Some(Reply::Refused(_))
        ));
        let plain = server_hello_record(0x0303, 0x002f, &[]);
        let Some(Reply::Picked(pick)) = read(tls12, &[0x002f], &plain) else {
            panic!("no pick");
        };
        assert!(!pick.renegotiation_info && !pick.extended_master_secret);
    }

    #[test]
    fn tls13_reads_supported_versions_and_the_group() {
        let ext = [0x00, 0x2b, 0, 2, 3, 4, 0x00, 0x33, 0, 36, 0x00, 0x1d, 0, 32];
        let mut ext = ext.to_vec();
        ext.extend_from_slice(&[9; 32]);
        let bytes = server_hello_record(0x0303, 0x1302, &ext);
        let Some(Reply::Picked(pick)) = read(DepthVersion::Tls13, &[0x1301, 0x1302], &bytes) else {
            panic!("no pick");
        };
        assert_eq!(
            (pick.version, pick.cipher, pick.group),
            (0x0304, 0x1302, Some(0x1d))
        );
        let without = server_hello_record(0x0303, 0x1302, &[]);
        assert!(matches!(
            read(DepthVersion::Tls13, &[0x1302], &without),
            Some(Reply::Refused(_))
        ));
    }

    #[test]
    fn alerts_refuse_and_sslv2_is_told() {
        let alert = [0x15, 3, 3, 0, 2, 2, 40];
        assert!(matches!(
            read(DepthVersion::Tls13, &[0x1301], &alert),
            Some(Reply::Refused(d)) if d == "alert handshake_failure"
        ));
        assert_eq!(read_sslv2(&[0x80]), None);
        assert_eq!(read_sslv2(&[0x80, 0x40, 4]), Some(true));
        assert_eq!(read_sslv2(&alert), Some(false));
    }
}
