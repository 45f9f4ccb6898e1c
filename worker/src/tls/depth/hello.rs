//! The hellos of the depth probe: a ClientHello for one version offering
//! exactly the given suites, and the SSLv2 CLIENT-HELLO of the DROWN check.

use tls_parser::TlsRecordType;

use super::catalog::DepthVersion;
use crate::tls::legacy::{
    be16, be24, hello_random, push_extension, sni_host, LegacyVersion, SIGNATURE_SCHEMES,
};

/// TLS_FALLBACK_SCSV (RFC 7507).
pub const FALLBACK_SCSV: u16 = 0x5600;
const RENEGOTIATION_SCSV: u16 = 0x00ff;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_EXTENDED_MASTER_SECRET: u16 = 0x0017;
const EXT_HEARTBEAT: u16 = 0x000f;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
const EXT_PSK_MODES: u16 = 0x002d;
const EXT_KEY_SHARE: u16 = 0x0033;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

/// x25519, secp256r1, secp384r1, secp521r1, x448.
const EC_GROUPS: [u16; 5] = [0x001d, 0x0017, 0x0018, 0x0019, 0x001e];
/// RFC 7919 ffdhe2048 … ffdhe8192.
const FFDHE_GROUPS: [u16; 5] = [0x0100, 0x0101, 0x0102, 0x0103, 0x0104];
/// TLS 1.3 signature schemes: ECDSA, RSA-PSS, EdDSA, then PKCS#1.
const TLS13_SCHEMES: [u16; 11] = [
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x0401, 0x0501, 0x0601,
];

/// What one hello offers.
#[derive(Debug, Clone)]
pub struct Hello<'a> {
    pub version: DepthVersion,
    pub suites: &'a [u16],
    pub sni: Option<&'a str>,
    /// Add TLS_FALLBACK_SCSV (a downgraded retry, RFC 7507).
    pub fallback: bool,
    /// The supported_groups to offer (a group enumeration); `None`: every
    /// group this hello offers by default.
    pub groups: Option<&'a [u16]>,
    /// Offer the heartbeat extension (RFC 6520), for the Heartbleed check.
    pub heartbeat: bool,
}

/// The ClientHello record. Before TLS 1.3: record and client version as
/// the version probes send them, compression DEFLATE then null (so a server
/// that still compresses says so), extended_master_secret and an empty
/// renegotiation_info (so the ServerHello tells both), SSLv3 with the
/// renegotiation SCSV instead of extensions. TLS 1.3: `supported_versions`
/// with 1.3 only and an x25519 key share (no key is ever derived: the
/// connection is dropped after the ServerHello).
pub fn client_hello(hello: &Hello<'_>) -> Vec<u8> {
    let tls13 = hello.version == DepthVersion::Tls13;
    let (client_version, record_version) = match hello.version {
        DepthVersion::Legacy(v) => (v.wire(), v.record_wire()),
        DepthVersion::Tls13 => (0x0303, 0x0301),
    };
    let with_extensions = hello.version != DepthVersion::Legacy(LegacyVersion::Ssl3);
    let random = hello_random();
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(&client_version.to_be_bytes());
    body.extend_from_slice(&random);
    if tls13 {
        // A legacy session id, as TLS 1.3 clients send for middleboxes.
        body.push(32);
        body.extend_from_slice(&hello_random());
    } else {
        body.push(0);
    }
    let mut suites: Vec<u16> = hello.suites.to_vec();
    if !with_extensions {
        suites.push(RENEGOTIATION_SCSV);
    }
    if hello.fallback {
        suites.push(FALLBACK_SCSV);
    }
    body.extend_from_slice(&be16(suites.len() * 2));
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    if tls13 {
        body.extend_from_slice(&[1, 0]);
    } else {
        body.extend_from_slice(&[2, 1, 0]); // DEFLATE, null
    }
    if with_extensions {
        let ext = extensions(hello, tls13, &random);
        body.extend_from_slice(&be16(ext.len()));
        body.extend_from_slice(&ext);
    }
    let mut record = Vec::with_capacity(body.len() + 9);
    record.push(u8::from(TlsRecordType::Handshake));
    record.extend_from_slice(&record_version.to_be_bytes());
    record.extend_from_slice(&be16(body.len() + 4));
    record.push(1); // client_hello
    record.extend_from_slice(&be24(body.len()));
    record.extend_from_slice(&body);
    record
}

fn extensions(hello: &Hello<'_>, tls13: bool, random: &[u8; 32]) -> Vec<u8> {
    let mut ext = Vec::with_capacity(256);
    if let Some(host) = hello.sni.and_then(sni_host) {
        let mut data = Vec::with_capacity(host.len() + 5);
        data.extend_from_slice(&be16(host.len() + 3));
        data.push(0);
        data.extend_from_slice(&be16(host.len()));
        data.extend_from_slice(host.as_bytes());
        push_extension(&mut ext, EXT_SERVER_NAME, &data);
    }
    let groups: Vec<u16> = match hello.groups {
        Some(groups) => groups.to_vec(),
        None if tls13 => EC_GROUPS.iter().chain(&FFDHE_GROUPS).copied().collect(),
        None => EC_GROUPS.to_vec(),
    };
    push_extension(&mut ext, EXT_SUPPORTED_GROUPS, &list16(&groups));
    if tls13 {
        push_extension(&mut ext, EXT_SIGNATURE_ALGORITHMS, &list16(&TLS13_SCHEMES));
        push_extension(&mut ext, EXT_SUPPORTED_VERSIONS, &[2, 0x03, 0x04]);
        push_extension(&mut ext, EXT_PSK_MODES, &[1, 1]);
        // One x25519 share when x25519 is offered: 32 bytes from the hello's
        // random stream (any 32 bytes are an x25519 public key; nothing is
        // ever derived). Without it, no share: the server names its group
        // in a HelloRetryRequest.
        let mut share = Vec::with_capacity(38);
        if groups.contains(&0x001d) {
            share.extend_from_slice(&be16(36));
            share.extend_from_slice(&0x001d_u16.to_be_bytes());
            share.extend_from_slice(&be16(32));
            share.extend_from_slice(random);
        } else {
            share.extend_from_slice(&be16(0));
        }
        push_extension(&mut ext, EXT_KEY_SHARE, &share);
    } else {
        push_extension(&mut ext, EXT_EC_POINT_FORMATS, &[1, 0]);
        if hello.version == DepthVersion::Legacy(LegacyVersion::Tls1_2) {
            push_extension(
                &mut ext,
                EXT_SIGNATURE_ALGORITHMS,
                &list16(&SIGNATURE_SCHEMES),
            );
        }
        push_extension(&mut ext, EXT_EXTENDED_MASTER_SECRET, &[]);
        if hello.heartbeat {
            push_extension(&mut ext, EXT_HEARTBEAT, &[1]); // peer_allowed_to_send
        }
        push_extension(&mut ext, EXT_RENEGOTIATION_INFO, &[0]);
    }
    ext
}

fn list16(items: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 * items.len());
    out.extend_from_slice(&be16(2 * items.len()));
    for item in items {
        out.extend_from_slice(&item.to_be_bytes());
    }
    out
}

/// An SSLv2 CLIENT-HELLO (version 0x0002) offering the seven SSLv2 cipher
/// kinds, no session id, a 16-byte challenge.
pub fn sslv2_client_hello() -> Vec<u8> {
    const SPECS: [[u8; 3]; 7] = [
        [0x01, 0x00, 0x80],
        [0x02, 0x00, 0x80],
        [0x03, 0x00, 0x80],
        [0x04, 0x00, 0x80],
        [0x05, 0x00, 0x80],
        [0x06, 0x00, 0x40],
        [0x07, 0x00, 0xc0],
    ];
    let challenge = hello_random();
    let mut msg = vec![1, 0x00, 0x02];
    msg.extend_from_slice(&be16(SPECS.len() * 3));
    msg.extend_from_slice(&[0, 0, 0, 16]);
    for spec in SPECS {
        msg.extend_from_slice(&spec);
    }
    msg.extend_from_slice(challenge.get(..16).unwrap_or_default());
    let len = msg.len();
    let mut record = Vec::with_capacity(len + 2);
    // Two-byte header with the high bit set; the message is far below 32 KiB.
    record.extend_from_slice(&[0x80 | ((len >> 8) as u8 & 0x7f), (len & 0xff) as u8]);
    record.extend_from_slice(&msg);
    record
}
