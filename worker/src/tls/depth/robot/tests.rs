//! The ROBOT check's payloads, encryption, framing and verdicts.

use super::*;

#[test]
fn payloads_fill_the_modulus_and_differ_where_robot_detect_says() {
    for k in [64, 128, 256, 512] {
        for p in Payload::ALL {
            let m = p.plaintext(k, 0x0303);
            assert_eq!(m.len(), k, "{p:?} {k}");
        }
        let valid = Payload::Valid.plaintext(k, 0x0303);
        assert_eq!(&valid[..2], &[0, 2]);
        assert_eq!(valid[k - 49], 0, "the separator before version and secret");
        assert_eq!(&valid[k - 48..k - 46], &[3, 3]);
        assert!(valid[2..k - 49].iter().all(|b| *b != 0), "nonzero padding");
        assert_eq!(
            &Payload::WrongFirstBytes.plaintext(k, 0x0303)[..2],
            &[0x41, 0x17]
        );
        assert!(!Payload::No00.plaintext(k, 0x0303)[2..].contains(&0));
        assert_eq!(
            &Payload::WrongVersion.plaintext(k, 0x0303)[k - 48..k - 46],
            &[2, 2]
        );
    }
}

#[test]
fn encryption_is_textbook_rsa_and_bounded() {
    // n = 0xff…fb-ish small test: a 64-byte modulus with e = 3, and the
    // check m^3 mod n by the same arithmetic done by hand.
    let n: Vec<u8> = (0..64u8).map(|i| 0xf0 ^ i).collect();
    let key = RsaKey {
        modulus: n.clone(),
        exponent: vec![3],
    };
    let m = Payload::Valid.plaintext(64, 0x0303);
    let c = key.encrypt(&m).expect("in bounds");
    assert_eq!(c.len(), 64);
    let (bn, bm) = (BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&m));
    assert_eq!(BigUint::from_bytes_be(&c), (&bm * &bm * &bm) % &bn);
    let big_e = RsaKey {
        modulus: n.clone(),
        exponent: vec![1; 5],
    };
    assert_eq!(big_e.encrypt(&m), None, "a peer-chosen exponent cost");
    let small = RsaKey {
        modulus: vec![0xff; 32],
        exponent: vec![1, 0, 1],
    };
    assert_eq!(small.encrypt(&m), None);
}

#[test]
fn the_client_key_exchange_is_framed() {
    let cke = client_key_exchange(0x0303, &[7u8; 256]).unwrap();
    assert_eq!(&cke[..5], &[0x16, 3, 3, 1, 6]);
    assert_eq!(&cke[5..11], &[0x10, 0, 1, 2, 1, 0]);
    assert_eq!(cke.len(), 5 + 4 + 2 + 256);
    let tail = ccs_and_finished(0x0303);
    assert_eq!(&tail[..6], &[0x14, 3, 3, 0, 1, 1]);
    assert_eq!(tail.len(), 6 + 5 + 80);
}

fn answered(oracle: &mut Oracle, answers: &[Response]) {
    for a in answers {
        assert!(oracle.next().is_some());
        oracle.record(Outcome::Answered(*a));
    }
}

#[test]
fn the_same_answer_five_times_is_no_oracle() {
    let mut oracle = Oracle::default();
    answered(&mut oracle, &[Response::Alert(20); 5]);
    assert_eq!(oracle.next(), None);
    let (verdict, detail) = oracle.verdict().unwrap();
    assert_eq!(*verdict, Tested::No);
    assert!(detail.contains("bad_record_mac"), "{detail}");
}

#[test]
fn differing_answers_repeated_are_an_oracle_and_its_strength() {
    let strong = [
        Response::Alert(20),
        Response::Alert(51),
        Response::Alert(20),
        Response::Alert(20),
        Response::Alert(20),
    ];
    let mut oracle = Oracle::default();
    answered(&mut oracle, &strong);
    assert_eq!(oracle.next(), Some(Payload::Valid), "a second round");
    answered(&mut oracle, &strong);
    let (verdict, detail) = oracle.verdict().unwrap();
    assert_eq!(*verdict, Tested::Yes);
    assert!(detail.starts_with("strong oracle"), "{detail}");

    let weak = [
        Response::Closed,
        Response::Alert(40),
        Response::Alert(40),
        Response::Alert(40),
        Response::Alert(40),
    ];
    let mut oracle = Oracle::default();
    answered(&mut oracle, &weak);
    answered(&mut oracle, &weak);
    assert!(oracle.verdict().unwrap().1.starts_with("weak oracle"));
}

#[test]
fn inconsistent_rounds_refused_hellos_and_failures() {
    let mut oracle = Oracle::default();
    let mut first = vec![Response::Alert(20); 5];
    first[1] = Response::Silence;
    answered(&mut oracle, &first);
    answered(&mut oracle, &[Response::Alert(20); 5]);
    assert_eq!(oracle.verdict().unwrap().0, Tested::Error);

    let mut oracle = Oracle::default();
    oracle.record(Outcome::NoRsa(
        "the RSA hello got alert handshake_failure".into(),
    ));
    assert_eq!(oracle.next(), None, "one session when RSA is refused");
    assert_eq!(oracle.verdict().unwrap().0, Tested::No);

    let mut oracle = Oracle::default();
    answered(&mut oracle, &[Response::Alert(20)]);
    oracle.record(Outcome::Failed("timeout".into()));
    assert_eq!(oracle.verdict().unwrap().0, Tested::Error);
    assert_eq!(oracle.next(), None);
}
