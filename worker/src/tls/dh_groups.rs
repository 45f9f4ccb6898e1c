//! Finite-field DH groups named by their prime: the RFC 7919 `ffdhe`
//! groups, the RFC 3526 MODP groups, RFC 2409's 1024-bit group 2 (the
//! widespread 1024-bit default, the Logjam paper's most common prime) and
//! the RFC 5114 groups. Known by the SHA-256 of the prime's big-endian
//! bytes (leading zeros stripped).

use crate::tls::cert::sha256_hex;

/// (SHA-256 of the prime, name). Hashes computed from OpenSSL 3's named
/// groups (`openssl genpkey -genparam -algorithm DH -pkeyopt group:NAME`)
/// and, for `modp_1024`, from RFC 2409 §6.2's prime.
const KNOWN: [(&str, &str); 15] = [
    (
        "3f35a3f5f6c4376a744acad409bb22f8d897f949d2311d885adaa890981b67a0",
        "modp_1024 (RFC 2409 group 2)",
    ),
    (
        "64fcc83ec403930bf18393dbc883ccaa1fbb08ac876f77f7aa99748ca945019b",
        "modp_1536 (RFC 3526)",
    ),
    (
        "d66436f79bbd6b2e38c0ffbd079be904d2641415e2e67140e09448be9a60890e",
        "modp_2048 (RFC 3526)",
    ),
    (
        "48cf8b092fbce4359d9871abf74f98e25b6163379eaa15cd9087e800c6d1c55c",
        "modp_3072 (RFC 3526)",
    ),
    (
        "4ee95187682bcb230ad26a95205f6920e84708f6251b3894329b09ec23919e33",
        "modp_4096 (RFC 3526)",
    ),
    (
        "d1bfe6d0925ce7e4da262b62861514a7755e35831e429f343e7b864848657efd",
        "modp_6144 (RFC 3526)",
    ),
    (
        "39ab4feab950a3128fb71accb9fc3965d857012e081998a85996e3ea8b3c3bcf",
        "modp_8192 (RFC 3526)",
    ),
    (
        "9cd3b7f336872f46c09428d1bbc19877a4d440512cda8d1c1cf0cd6e33698966",
        "ffdhe2048 (RFC 7919)",
    ),
    (
        "0eaf67db3a839156d5013494a5318a772b5697d270d721f37f092efc69ea5a17",
        "ffdhe3072 (RFC 7919)",
    ),
    (
        "4648414224ac881b3d0dc59b466f96d06a558278776807797ecf1f66ff397b3e",
        "ffdhe4096 (RFC 7919)",
    ),
    (
        "227ac9066b3ddd9e193670cda2388fa884f65ba0cf98b742d1fe77a6687c79c7",
        "ffdhe6144 (RFC 7919)",
    ),
    (
        "770b14efaf6f049929c523113b3fa99a8d11dab1b18af3609590122075d19833",
        "ffdhe8192 (RFC 7919)",
    ),
    (
        "44c55cfee5c075927cf682da5b681bdecbd5c3eb0784c14f5dce7610f0ef133d",
        "dh_1024_160 (RFC 5114)",
    ),
    (
        "bfe545862ca102ad1eeddb5fbfa5bf855ac4995c56a8b408ce3fe099dce93a9d",
        "dh_2048_224 (RFC 5114)",
    ),
    (
        "0b7835722cb619827610c2549fdda5587421686c4409a13865e76225522ddcc9",
        "dh_2048_256 (RFC 5114)",
    ),
];

/// The name of the group whose prime is `prime` (big-endian, leading
/// zeros allowed), when it is a known one.
pub fn name(prime: &[u8]) -> Option<&'static str> {
    let start = prime.iter().position(|b| *b != 0)?;
    let hash = sha256_hex(prime.get(start..)?);
    KNOWN.iter().find(|(h, _)| *h == hash).map(|(_, n)| *n)
}

/// RFC 2409 §6.2's 1024-bit prime, big-endian (for tests and the lab).
pub const MODP_1024: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6\
F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_2409_prime_is_named_with_or_without_a_leading_zero() {
        let prime: Vec<u8> = (0..MODP_1024.len() / 2)
            .map(|i| u8::from_str_radix(&MODP_1024[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(prime.len(), 128);
        assert_eq!(name(&prime), Some("modp_1024 (RFC 2409 group 2)"));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&prime);
        assert_eq!(name(&padded), name(&prime));
        let mut other = prime.clone();
        other[64] ^= 1;
        assert_eq!(name(&other), None);
        assert_eq!(name(&[0, 0]), None);
    }
}
