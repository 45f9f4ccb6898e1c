//! The chain walk's diagnosis of bogus and unfetchable answers.

use hickory_resolver::proto::rr::rdata::A;

use super::*;

#[test]
fn the_closest_anchor_covers_a_name() {
    let text = ". 300 IN DNSKEY 257 3 13 AAAA\nsec.test. 300 IN DNSKEY 257 3 13 AAAA\n";
    let anchors = Anchors::new(std::sync::Arc::new(TrustAnchors::empty()), Some(text));
    let name = |s: &str| Name::from_ascii(s).expect("a name");
    assert_eq!(
        anchors.zone_for(&name("mx.sec.test.")),
        Some(&name("sec.test."))
    );
    assert_eq!(anchors.zone_for(&name("other.test.")), Some(&Name::root()));
    assert_eq!(anchors.first_zone(), Name::root());
    let iana = Anchors::new(std::sync::Arc::new(TrustAnchors::default()), None);
    assert_eq!(iana.first_zone(), Name::root());
}

use hickory_resolver::proto::dnssec::crypto::EcdsaSigningKey;
use hickory_resolver::proto::dnssec::rdata::sig::SigInput;
use hickory_resolver::proto::dnssec::{Algorithm, SigningKey, TBS};
use hickory_resolver::proto::rr::SerialNumber;

const DAY: u32 = 86_400;

fn key() -> (EcdsaSigningKey, DNSKEY) {
    let alg = Algorithm::ECDSAP256SHA256;
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(alg).expect("a key");
    let key = EcdsaSigningKey::from_pkcs8(&pkcs8, alg).expect("a key");
    let public = key.to_public_key().expect("its public key");
    (key, DNSKEY::from_key(&public))
}

/// `records` plus an RRSIG over them by `key`, valid from `inception`
/// to `expiration` (unix seconds), claiming `key_tag`.
fn signed(
    records: &[Record],
    key: &EcdsaSigningKey,
    key_tag: u16,
    inception: u32,
    expiration: u32,
) -> Vec<Record> {
    let first = &records[0];
    let input = SigInput {
        type_covered: first.record_type(),
        algorithm: Algorithm::ECDSAP256SHA256,
        num_labels: first.name.num_labels(),
        original_ttl: first.ttl,
        sig_expiration: SerialNumber::from(expiration),
        sig_inception: SerialNumber::from(inception),
        key_tag,
        signer_name: Name::from_ascii("sec.test.").expect("a name"),
    };
    let tbs =
        TBS::from_input(&first.name, DNSClass::IN, &input, records.iter()).expect("to be signed");
    let sig = key.sign(&tbs).expect("a signature");
    let mut out = records.to_vec();
    out.push(Record::from_rdata(
        first.name.clone(),
        first.ttl,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
    ));
    out
}

#[test]
fn each_signature_fault_has_its_reason() {
    let owner = Name::from_ascii("mx.sec.test.").expect("a name");
    let a = |last: u8| Record::from_rdata(owner.clone(), 300, RData::A(A::new(192, 0, 2, last)));
    let (key, dnskey) = key();
    let tag = dnskey.calculate_key_tag().expect("a key tag");
    let keys = [dnskey];
    let t = now();
    let zone = Name::from_ascii("sec.test.").expect("a name");
    let check = |records: &[Record]| check_rrset(records, &owner, RecordType::A, (&zone, &keys), t);
    assert_eq!(check(&signed(&[a(1)], &key, tag, t - DAY, t + DAY)), Ok(()));
    assert_eq!(
        check(&signed(&[a(1)], &key, tag, t - 30 * DAY, t - 16 * DAY)),
        Err(DnssecReason::SignatureExpired)
    );
    assert_eq!(
        check(&signed(&[a(1)], &key, tag, t + DAY, t + 15 * DAY)),
        Err(DnssecReason::SignatureNotYetValid)
    );
    let mut tampered = signed(&[a(1)], &key, tag, t - DAY, t + DAY);
    tampered[0] = a(2);
    assert_eq!(check(&tampered), Err(DnssecReason::SignatureInvalid));
    assert_eq!(
        check(&signed(
            &[a(1)],
            &key,
            tag.wrapping_add(1),
            t - DAY,
            t + DAY
        )),
        Err(DnssecReason::DnskeyMissing)
    );
    let (other, _) = self::key();
    assert_eq!(
        check(&signed(&[a(1)], &other, tag, t - DAY, t + DAY)),
        Err(DnssecReason::SignatureInvalid)
    );
    // Good bytes from the right key, but the RRSIG names another signer.
    let parent = Name::from_ascii("test.").expect("a name");
    assert_eq!(
        check_rrset(
            &signed(&[a(1)], &key, tag, t - DAY, t + DAY),
            &owner,
            RecordType::A,
            (&parent, &keys),
            t
        ),
        Err(DnssecReason::SignatureInvalid)
    );
}

#[test]
fn an_unsigned_rrset_is_missing_its_rrsig() {
    let owner = Name::from_ascii("mx.sec.test.").expect("a name");
    let records = vec![Record::from_rdata(
        owner.clone(),
        300,
        RData::A(A::new(192, 0, 2, 1)),
    )];
    assert_eq!(
        check_rrset(&records, &owner, RecordType::A, (&owner, &[]), now()),
        Err(DnssecReason::RrsigMissing)
    );
}
