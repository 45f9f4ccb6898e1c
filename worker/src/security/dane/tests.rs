use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::*;

struct Pki {
    ca: Vec<u8>,
    leaf: Vec<u8>,
    leaf_spki: Vec<u8>,
    other_ca: Vec<u8>,
}

fn make_ca(name: &str) -> (CertificateParams, KeyPair, Vec<u8>) {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::new()).expect("ca params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let cert = params.self_signed(&key).expect("ca cert");
    let der = cert.der().to_vec();
    (params, key, der)
}

fn pki(leaf_name: &str) -> Pki {
    let (ca_params, ca_key, ca) = make_ca("test CA");
    let (_, _, other_ca) = make_ca("other CA");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec![leaf_name.to_string()]).expect("leaf");
    params
        .distinguished_name
        .push(DnType::CommonName, leaf_name);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert")
        .der()
        .to_vec();
    let leaf_spki = spki(&leaf).expect("leaf spki");
    Pki {
        ca,
        leaf,
        leaf_spki,
        other_ca,
    }
}

fn record(usage: u8, selector: u8, matching_type: u8, data: &[u8]) -> TlsaRecord {
    TlsaRecord {
        usage,
        selector,
        matching_type,
        data_hex: encode_hex(data),
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn sha512(b: &[u8]) -> Vec<u8> {
    Sha512::digest(b).to_vec()
}

const MX: &str = "mx.example.test";

fn verdict(tlsa: &[TlsaRecord], chain: &[Vec<u8>]) -> DaneVerdict {
    dane_verdict(tlsa, chain, MX, SystemTime::now()).verdict
}

#[test]
fn dane_ee_matches_by_spki_or_full_certificate() {
    let p = pki(MX);
    let chain = vec![p.leaf.clone(), p.ca.clone()];
    for tlsa in [
        record(3, 1, 1, &sha256(&p.leaf_spki)),
        record(3, 1, 2, &sha512(&p.leaf_spki)),
        record(3, 1, 0, &p.leaf_spki),
        record(3, 0, 1, &sha256(&p.leaf)),
        record(3, 0, 2, &sha512(&p.leaf)),
        record(3, 0, 0, &p.leaf),
    ] {
        let r = dane_verdict(std::slice::from_ref(&tlsa), &chain, MX, SystemTime::now());
        assert_eq!(
            r.verdict,
            DaneVerdict::DaneValid,
            "{tlsa:?}: {:?}",
            r.detail
        );
        assert_eq!(r.tlsa, vec![tlsa]);
    }
}

#[test]
fn dane_ee_skips_name_and_chain_checks() {
    // A leaf for another name, alone, far in the future: still valid.
    let p = pki("other.example.test");
    let later = SystemTime::now() + Duration::from_secs(3650 * 86400);
    let tlsa = [record(3, 1, 1, &sha256(&p.leaf_spki))];
    assert_eq!(
        dane_verdict(&tlsa, &[p.leaf], MX, later).verdict,
        DaneVerdict::DaneValid
    );
}

#[test]
fn dane_ee_mismatch() {
    let p = pki(MX);
    let q = pki(MX);
    let tlsa = [record(3, 1, 1, &sha256(&q.leaf_spki))];
    let r = dane_verdict(&tlsa, &[p.leaf, p.ca], MX, SystemTime::now());
    assert_eq!(r.verdict, DaneVerdict::DaneMismatch);
    assert!(r
        .detail
        .unwrap_or_default()
        .contains("does not match the leaf"));
}

#[test]
fn dane_ta_matches_an_issuer_and_checks_the_chain_and_name() {
    let p = pki(MX);
    let chain = vec![p.leaf.clone(), p.ca.clone()];
    for tlsa in [
        record(2, 0, 1, &sha256(&p.ca)),
        record(2, 0, 0, &p.ca),
        record(2, 1, 2, &sha512(&spki(&p.ca).expect("spki"))),
    ] {
        let r = dane_verdict(std::slice::from_ref(&tlsa), &chain, MX, SystemTime::now());
        assert_eq!(
            r.verdict,
            DaneVerdict::DaneValid,
            "{tlsa:?}: {:?}",
            r.detail
        );
    }
    // Wrong name on the leaf.
    let tlsa = [record(2, 0, 1, &sha256(&p.ca))];
    let r = dane_verdict(&tlsa, &chain, "mx.elsewhere.test", SystemTime::now());
    assert_eq!(r.verdict, DaneVerdict::DaneMismatch);
    assert!(r.detail.unwrap_or_default().contains("not valid for"));
    // The leaf has expired in 2100 (TA dates are not checked, the leaf's are).
    let later = UNIX_EPOCH + Duration::from_secs(4_200_000_000);
    assert_eq!(
        dane_verdict(&tlsa, &chain, MX, later).verdict,
        DaneVerdict::DaneMismatch
    );
}

#[test]
fn dane_ta_needs_the_ta_in_the_chain_and_a_real_signature() {
    let p = pki(MX);
    // The TA record names a CA that is not presented.
    let tlsa = [record(2, 0, 1, &sha256(&p.ca))];
    assert_eq!(
        verdict(&tlsa, std::slice::from_ref(&p.leaf)),
        DaneVerdict::DaneMismatch
    );
    // The TA is presented but did not sign the leaf.
    let tlsa = [record(2, 0, 1, &sha256(&p.other_ca))];
    let r = dane_verdict(&tlsa, &[p.leaf, p.other_ca], MX, SystemTime::now());
    assert_eq!(r.verdict, DaneVerdict::DaneMismatch);
    assert!(r.detail.unwrap_or_default().contains("does not chain"));
}

#[test]
fn pkix_usages_and_malformed_records_are_unusable() {
    let p = pki(MX);
    let chain = vec![p.leaf.clone(), p.ca.clone()];
    let unusable = [
        record(0, 0, 1, &sha256(&p.ca)),
        record(1, 1, 1, &sha256(&p.leaf_spki)),
        record(3, 2, 1, &sha256(&p.leaf_spki)),
        record(3, 1, 3, &sha256(&p.leaf_spki)),
        record(3, 1, 1, &[1, 2, 3]),
        TlsaRecord {
            usage: 3,
            selector: 1,
            matching_type: 1,
            data_hex: "zz".into(),
        },
    ];
    let r = dane_verdict(&unusable, &chain, MX, SystemTime::now());
    assert_eq!(r.verdict, DaneVerdict::NoTlsa);
    assert_eq!(r.tlsa.len(), unusable.len());
    // One usable record among them decides.
    let mut mixed = unusable.to_vec();
    mixed.push(record(3, 1, 1, &sha256(&p.leaf_spki)));
    assert_eq!(verdict(&mixed, &chain), DaneVerdict::DaneValid);
}

#[test]
fn garbage_certificates_do_not_panic() {
    let tlsa = [
        record(3, 1, 1, &[0; 32]),
        record(2, 1, 1, &[0; 32]),
        record(2, 0, 1, &sha256(b"junk")),
    ];
    let chain = vec![b"not a cert".to_vec(), b"junk".to_vec()];
    assert_eq!(verdict(&tlsa, &chain), DaneVerdict::DaneMismatch);
    assert_eq!(verdict(&tlsa, &[]), DaneVerdict::DaneMismatch);
    assert_eq!(verdict(&[], &chain), DaneVerdict::NoTlsa);
}

#[test]
fn lookup_states() {
    let now = SystemTime::now();
    assert_eq!(
        dane_outcome(&TlsaLookup::NoRecords, &[], MX, now).verdict,
        DaneVerdict::NoTlsa
    );
    assert_eq!(
        dane_outcome(
            &TlsaLookup::Failed("servfail".into(), DnssecReason::LookupServfail),
            &[],
            MX,
            now
        )
        .reason,
        Some(DnssecReason::LookupServfail)
    );
    let bogus = Verdict {
        status: DnssecStatus::Bogus,
        reason: Some(DnssecReason::DsMismatch),
    };
    assert_eq!(address_not_secure(bogus).verdict, DaneVerdict::AddressBogus);
    assert_eq!(
        address_not_secure(Verdict::indeterminate(DnssecReason::LookupTimeout)).verdict,
        DaneVerdict::TlsaLookupFailed
    );
    let insecure = Verdict {
        status: DnssecStatus::Insecure,
        reason: Some(DnssecReason::InsecureDelegation),
    };
    assert_eq!(
        address_not_secure(insecure).verdict,
        DaneVerdict::NotApplicableInsecure
    );
    assert_eq!(
        dane_outcome(&TlsaLookup::Insecure, &[], MX, now).verdict,
        DaneVerdict::NotApplicableInsecure
    );
}
