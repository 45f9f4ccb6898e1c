use mxscope_common::record::security_policy::{MtaStsVerdict, PolicyMode};
use mxscope_common::Verification;
use proptest::prelude::*;

use super::*;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn txt_records_parse_strictly() {
    assert_eq!(
        parse_sts_txt("v=STSv1; id=20240101T000000Z"),
        Ok(StsTxt {
            id: "20240101T000000Z".into()
        })
    );
    assert!(parse_sts_txt("v=STSv1;id=abc;").is_ok());
    assert!(parse_sts_txt("v=STSv1 ; id=abc ; ext-1.x=val").is_ok());
    assert_eq!(parse_sts_txt("v=STSv1"), Err(TxtError::MissingId));
    assert_eq!(parse_sts_txt("v=stsv1; id=a"), Err(TxtError::NotSts));
    assert_eq!(parse_sts_txt("v=STSv10; id=a"), Err(TxtError::NotSts));
    assert!(matches!(
        parse_sts_txt("v=STSv1; id=a-b"),
        Err(TxtError::BadId(_))
    ));
    assert!(matches!(
        parse_sts_txt(&format!("v=STSv1; id={}", "a".repeat(33))),
        Err(TxtError::BadId(_))
    ));
    assert_eq!(
        parse_sts_txt("v=STSv1; id=a; id=b"),
        Err(TxtError::DuplicateId)
    );
    assert!(matches!(
        parse_sts_txt("v=STSv1; id"),
        Err(TxtError::Field(_))
    ));
}

#[test]
fn txt_selection_needs_exactly_one_sts_record() {
    assert_eq!(select_sts_txt(&[]), TxtLookup::Absent);
    assert_eq!(
        select_sts_txt(&strings(&["v=spf1 -all"])),
        TxtLookup::Absent
    );
    assert!(matches!(
        select_sts_txt(&strings(&["v=spf1 -all", "v=STSv1; id=1"])),
        TxtLookup::Found(_)
    ));
    assert!(matches!(
        select_sts_txt(&strings(&["v=STSv1; id=1", "v=STSv1; id=2"])),
        TxtLookup::Invalid(_)
    ));
    assert!(matches!(
        select_sts_txt(&strings(&["v=STSv1; id=!"])),
        TxtLookup::Invalid(_)
    ));
}

const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET\r\nmax_age: 604800\r\n";

#[test]
fn policies_parse() {
    let policy = parse_policy(POLICY.as_bytes()).expect("valid");
    assert_eq!(policy.mode, PolicyMode::Enforce);
    assert_eq!(policy.mx, strings(&["mail.example.com", "*.example.net"]));
    assert_eq!(policy.max_age, 604_800);
    // LF only, trailing blanks, an extension, no final newline.
    let policy =
        parse_policy(b"version: STSv1\nmode:testing  \next: x y\nmx: a.example\nmax_age:86400")
            .expect("valid");
    assert_eq!(policy.mode, PolicyMode::Testing);
    // mode none may omit mx.
    let policy = parse_policy(b"version: STSv1\nmode: none\nmax_age: 1\n").expect("valid");
    assert_eq!(policy.mode, PolicyMode::None);
    assert!(policy.mx.is_empty());
}

#[test]
fn bad_policies_say_why() {
    let parse = |s: &str| parse_policy(s.as_bytes());
    assert_eq!(
        parse("mode: enforce\nmx: a.example\nmax_age: 1"),
        Err(PolicyError::Missing("version"))
    );
    assert_eq!(
        parse("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1"),
        Err(PolicyError::Version("STSv2".into()))
    );
    assert_eq!(
        parse("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1"),
        Err(PolicyError::Mode("Enforce".into()))
    );
    assert_eq!(
        parse("version: STSv1\nmode: enforce\nmax_age: 1"),
        Err(PolicyError::Missing("mx"))
    );
    assert_eq!(
        parse("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1"),
        Err(PolicyError::MaxAge("-1".into()))
    );
    assert_eq!(
        parse("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901"),
        Err(PolicyError::MaxAge("12345678901".into()))
    );
    assert!(matches!(
        parse("version: STSv1\nmode: enforce\nmode: none\nmx: a\nmax_age: 1"),
        Err(PolicyError::Duplicate { line: 3, .. })
    ));
    assert!(matches!(
        parse("version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1"),
        Err(PolicyError::Mx(_))
    ));
    assert!(matches!(
        parse("version: STSv1\nmode: enforce\nmx: **.a\nmax_age: 1"),
        Err(PolicyError::Mx(_))
    ));
    assert!(matches!(
        parse("<html>hello</html>"),
        Err(PolicyError::Line { line: 1, .. })
    ));
    assert_eq!(parse_policy(&[0xff, 0xfe]), Err(PolicyError::NotUtf8));
}

fn policy(mode: PolicyMode, mx: &[&str]) -> Result<Policy, FetchError> {
    Ok(Policy {
        mode,
        mx: strings(mx),
        max_age: 86400,
    })
}

fn found() -> TxtLookup {
    TxtLookup::Found(StsTxt { id: "1".into() })
}

fn tls(mx: &str, verification: Verification, name_ok: bool) -> MxTls {
    MxTls {
        mx: mx.into(),
        session: MxSession::Tls {
            verification,
            name_ok,
        },
    }
}

/// What the worker adds to `mxscope_common::mtasts::evaluate_policy` (tested
/// there): the verdict of each TXT lookup and fetch result.
#[test]
fn evaluate_maps_lookup_and_fetch_states() {
    let mx = strings(&["mx1.example.net"]);
    let good = [tls("mx1.example.net", Verification::Valid, true)];
    let bad = [tls("mx1.example.net", Verification::SelfSigned, false)];
    let ok = policy(PolicyMode::Enforce, &["*.example.net"]);
    let sts = evaluate(&found(), Some(&ok), &mx, &good);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceOk);
    assert_eq!(sts.txt_id.as_deref(), Some("1"));
    assert_eq!(sts.per_mx.len(), 1);
    let sts = evaluate(&found(), Some(&ok), &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);

    let sts = evaluate(&found(), None, &mx, &good);
    assert_eq!(sts.verdict, MtaStsVerdict::PolicyFetchFailed);
    assert_eq!(sts.txt_id.as_deref(), Some("1"));
    assert_eq!(sts.detail.as_deref(), Some("policy not fetched"));

    let absent = Err(FetchError::NoPolicyHost {
        host: "mta-sts.example.net".into(),
        reason: "NXDOMAIN".into(),
    });
    let sts = evaluate(&found(), Some(&absent), &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::TxtWithoutPolicy);
    let refused = Err(FetchError::Connect {
        host: "mta-sts.example.net".into(),
        port: 443,
        reason: "refused".into(),
    });
    let sts = evaluate(&found(), Some(&refused), &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::TxtWithoutPolicy);

    let large = Err(FetchError::TooLarge { limit: 65536 });
    let sts = evaluate(&found(), Some(&large), &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::PolicyFetchFailed);
    assert!(sts.detail.is_some_and(|d| d.contains("65536")));
    let redirect = Err(FetchError::Redirect {
        status: 301,
        location: "https://elsewhere/".into(),
    });
    let sts = evaluate(&found(), Some(&redirect), &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::PolicyFetchFailed);
    assert!(sts.per_mx.is_empty() && sts.policy.is_none());

    let sts = evaluate(&TxtLookup::Absent, None, &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::NoMtaSts);
    let sts = evaluate(&TxtLookup::Invalid("x".into()), None, &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::TxtInvalid);
    assert_eq!(sts.detail.as_deref(), Some("x"));
    let sts = evaluate(&TxtLookup::DnsError("x".into()), Some(&ok), &mx, &good);
    assert_eq!(sts.verdict, MtaStsVerdict::DnsError);
}

proptest! {
    #[test]
    fn parsers_never_panic(text in "\\PC{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_sts_txt(&text);
        let _ = parse_sts_txt(&format!("v=STSv1; {text}"));
        let _ = parse_policy(text.as_bytes());
        let _ = parse_policy(&bytes);
        let _ = parse_policy(format!("version: STSv1\nmode: enforce\nmx: {text}\nmax_age: 1").as_bytes());
    }

    #[test]
    fn a_valid_policy_round_trips(
        labels in proptest::collection::vec("[a-z0-9]{1,10}", 1..5),
        wildcard in any::<bool>(),
        max_age in 0u64..31_557_600,
    ) {
        let host = labels.join(".");
        let pattern = if wildcard { format!("*.{host}") } else { host.clone() };
        let body = format!("version: STSv1\nmode: enforce\nmx: {pattern}\nmax_age: {max_age}\n");
        let policy = parse_policy(body.as_bytes()).expect("valid policy");
        prop_assert_eq!(policy.mx, vec![pattern.clone()]);
        prop_assert_eq!(policy.max_age, max_age);
        let mx = if wildcard { format!("mx.{host}") } else { host };
        prop_assert!(mx_matches(&pattern, &mx));
    }
}
