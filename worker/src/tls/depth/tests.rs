use mxscope_common::{Protocols, SuiteClass, Tested, VersionSupport};

use super::reply::Pick;
use super::*;

fn protocols(tls13: bool, tls12: bool, tls10: bool) -> Protocols {
    let s = |on| {
        if on {
            VersionSupport::Supported
        } else {
            VersionSupport::NotSupported
        }
    };
    Protocols {
        ssl3: s(false),
        tls1_0: s(tls10),
        tls1_1: s(false),
        tls1_2: s(tls12),
        tls1_3: s(tls13),
    }
}

fn pick(cipher: u16, renegotiation_info: bool) -> Answer {
    Answer::Tls(Reply::Picked(Pick {
        version: 0x0303,
        cipher,
        compression: 0,
        renegotiation_info,
        extended_master_secret: false,
        retry_request: false,
        group: None,
        heartbeat: false,
    }))
}

#[test]
fn versions_come_first_then_fallback_and_sslv2() {
    // TLS 1.3 from the main session; the versions before it untested.
    let untested = Protocols {
        tls1_3: VersionSupport::Supported,
        ..Protocols::default()
    };
    let mut run = DepthRun::new(DepthLevel::Classes, 96, &untested);
    let refuse = || Answer::Tls(Reply::Refused("alert handshake_failure".into()));
    // TLS 1.3 costs nothing at the classes level: TLS 1.2 is first.
    let step = run.next_step().unwrap();
    assert_eq!(
        run.version_of(&step),
        Some(DepthVersion::Legacy(LegacyVersion::Tls1_2))
    );
    run.record(&step, pick(0xc030, false));
    let step = run.next_step().unwrap();
    run.record(&step, refuse());
    // TLS 1.1, 1.0, SSLv3: one refused hello each (their version probes).
    for _ in 0..3 {
        let step = run.next_step().unwrap();
        assert!(matches!(step, Step::Version { .. }));
        run.record(&step, refuse());
    }
    // One DHE-only hello on TLS 1.2: the DH prime.
    let step = run.next_step().unwrap();
    let Step::Dhe { version, suites } = &step else {
        panic!("not the DHE hello: {step:?}");
    };
    assert_eq!(*version, LegacyVersion::Tls1_2);
    assert!(suites.contains(&0x009e) && !suites.contains(&0xc02f));
    assert!(!suites.contains(&0x00aa), "no DHE_PSK: no key to offer");
    assert!(
        !suites.contains(&0x00a6),
        "no DH_anon: a finding of its own"
    );
    run.record(
        &step,
        Answer::Dh {
            bits: 2048,
            group: Some("ffdhe2048"),
        },
    );
    let step = run.next_step().unwrap();
    assert!(matches!(
        &step,
        Step::Fallback {
            version: LegacyVersion::Tls1_2,
            ..
        }
    ));
    run.record(
        &step,
        Answer::Tls(Reply::Refused("alert inappropriate_fallback".into())),
    );
    let step = run.next_step().unwrap();
    assert_eq!(step, Step::Sslv2);
    run.record(&step, Answer::Sslv2(false));
    assert!(run.next_step().is_none());
    let support: Vec<(String, VersionSupport)> = run
        .support()
        .into_iter()
        .map(|(v, s, _)| (v.key().to_owned(), s))
        .collect();
    assert_eq!(
        support,
        [
            ("tls1_2".to_owned(), VersionSupport::Supported),
            ("tls1_1".to_owned(), VersionSupport::NotSupported),
            ("tls1_0".to_owned(), VersionSupport::NotSupported),
            ("ssl3".to_owned(), VersionSupport::NotSupported),
        ]
    );
    let depth = run.finish();
    assert_eq!(depth.fallback_scsv, Tested::Yes);
    assert_eq!(depth.sslv2, Tested::No);
    assert_eq!(depth.secure_renegotiation, Tested::No);
    assert_eq!(depth.sessions, 8);
    assert_eq!(
        (depth.dh_bits, depth.dh_group.as_deref()),
        (Some(2048), Some("ffdhe2048"))
    );
    assert_eq!(depth.versions["tls1_3"].classes, vec![SuiteClass::Aead]);
    assert_eq!(depth.versions["tls1_2"].classes, vec![SuiteClass::Aead]);
    assert!(
        !depth.versions.contains_key("tls1_1"),
        "not spoken: not listed"
    );
    assert!(depth.not_measured.is_empty());
}

#[test]
fn the_budget_stops_the_run_and_says_what_was_not_measured() {
    let mut run = DepthRun::new(DepthLevel::Suites, 2, &protocols(false, true, true));
    let mut steps = 0;
    while let Some(step) = run.next_step() {
        run.record(&step, pick(0xc014, true));
        steps += 1;
    }
    assert_eq!(steps, 2);
    let depth = run.finish();
    assert_eq!(
        depth.not_measured,
        vec![
            "tls1_2 suites",
            "tls1_0 suites",
            "groups",
            "dh_group",
            "fallback_scsv",
            "sslv2"
        ]
    );
    assert!(!depth.versions["tls1_2"].complete);
}

#[test]
fn a_single_version_has_no_fallback_test() {
    let mut run = DepthRun::new(DepthLevel::Classes, 96, &protocols(false, true, false));
    let step = run.next_step().unwrap();
    run.record(
        &step,
        Answer::Tls(Reply::Refused("alert handshake_failure".into())),
    );
    let step = run.next_step().unwrap();
    assert!(matches!(step, Step::Dhe { .. }), "{step:?}");
    run.record(
        &step,
        Answer::Tls(Reply::Refused("alert handshake_failure".into())),
    );
    assert_eq!(run.next_step(), Some(Step::Sslv2));
    let depth = run.finish();
    assert_eq!(depth.fallback_scsv, Tested::NotTested);
}
