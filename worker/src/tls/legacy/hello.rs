//! The ClientHello of a version probe: one version, every suite a
//! permissive OpenSSL client offers for it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tls_parser::TlsRecordType;

use super::LegacyVersion;

/// The cipher suites offered, strongest first: a broad list of what clients
/// of the SSLv3–TLS 1.1 era sent, down to DES and export suites, so that a
/// server speaking the version finds something it accepts. The AES-GCM
/// suites are TLS 1.2 only and are never chosen by a correct server here.
pub(super) const CIPHER_SUITES: &[u16] = &[
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
pub(crate) const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// supported_groups: x25519, secp256r1, secp384r1, secp521r1.
pub(super) const GROUPS: [u16; 4] = [0x001d, 0x0017, 0x0018, 0x0019];

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;

/// signature_algorithms of a TLS 1.2 hello (RFC 5246 §7.4.1.4.1, RFC 8446
/// names): SHA-2 and PSS first, SHA-1 and DSA last, as OpenSSL offers them.
pub(crate) const SIGNATURE_SCHEMES: [u16; 15] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0402, 0x0203,
    0x0201, 0x0202, 0x0303,
];
const EXT_PADDING: u16 = 0x0015;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;
const EXT_EXTENDED_MASTER_SECRET: u16 = 0x0017;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
pub(super) const HANDSHAKE_SERVER_HELLO: u8 = 2;
pub(super) const HANDSHAKE_HELLO_REQUEST: u8 = 0;

/// A ClientHello record offering exactly `version`: record-layer version and
/// `client_version` both equal to it, no `supported_versions`, no session id.
/// TLS 1.0–1.2 offer DEFLATE then null compression (so a server that still
/// compresses says so: CRIME) and carry server_name (when `sni` is a usable
/// host name), supported_groups, ec_point_formats, an empty
/// renegotiation_info and extended_master_secret (so the ServerHello tells
/// both: free facts of `--legacy`); SSLv3 offers null compression only, has
/// no extensions and signals secure renegotiation with the SCSV instead
/// (RFC 5746 §3.4 advises against sending both).
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
    if version.has_extensions() {
        body.extend_from_slice(&[2, 1, 0]); // compression_methods: DEFLATE, null
    } else {
        body.extend_from_slice(&[1, 0]); // compression_methods: null
    }

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
        push_extension(&mut ext, EXT_EXTENDED_MASTER_SECRET, &[]);

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
pub(crate) fn sni_host(sni: &str) -> Option<&str> {
    let host = sni.strip_suffix('.').unwrap_or(sni);
    let usable = !host.is_empty()
        && host.len() <= 253
        && host.parse::<IpAddr>().is_err()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    usable.then_some(host)
}

pub(crate) fn push_extension(ext: &mut Vec<u8>, kind: u16, data: &[u8]) {
    ext.extend_from_slice(&kind.to_be_bytes());
    ext.extend_from_slice(&be16(data.len()));
    ext.extend_from_slice(data);
}

/// Big-endian u16 of a length; hello blocks stay far below 64 KiB (the SNI,
/// the only variable part, is capped at 253 bytes).
pub(crate) fn be16(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

pub(crate) fn be24(len: usize) -> [u8; 3] {
    let [_, a, b, c] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [a, b, c]
}

/// 32 bytes of ClientHello random: `gmt_unix_time` then a splitmix64 stream
/// seeded from the clock and a counter. Unpredictability does not matter:
/// no key is ever derived from it.
pub(crate) fn hello_random() -> [u8; 32] {
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
