//! The hostile corpus: one table of odd SMTP peers, each a script of the
//! scripted fake (`mxscope_tests::scripted`) on its own `127.0.0.1` port,
//! with the record the probe must make of it — outcome, phase, anomalies,
//! HELO fallback, the typed handshake failure — and a time bound: a case
//! that ends by itself must end well inside one phase timeout, a case that
//! ends by a timeout inside the session deadline. Needs no root.
//!
//! Expectations are the record's JSON names (the contract users' scripts
//! read), so a renamed field fails here too.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;

use mxscope_tests::lab;
use mxscope_tests::runs::probing::{self, TEST_TIMEOUTS};
use mxscope_tests::scripted::scripts::{self, Leaf};
use mxscope_tests::scripted::{say, serve_script, Script, Step, Tls};
use mxscope_worker::probe::Prober;

/// The name every scripted server's leaf is for (and the probe's SNI).
const NAME: &str = "mx-scripted.lab.test";

/// What the probe must record.
#[derive(Debug, Clone)]
struct Want {
    outcome: &'static str,
    phase: &'static str,
    anomalies: Vec<&'static str>,
    helo_fallback: bool,
    /// `handshake_failure` (absent when `None`).
    failure: Option<&'static str>,
    /// `handshake_alert` (absent when `None`).
    alert: Option<&'static str>,
    /// TLS facts present, and their `source` when it is not the handshake.
    tls: Option<Option<&'static str>>,
    /// A reply to STARTTLS is recorded (STARTTLS was sent and answered).
    starttls_reply: bool,
    /// The case ends by a timeout (bounded by the session deadline), not
    /// by itself (bounded by one phase timeout).
    slow: bool,
    /// Text `detail` must contain.
    detail: Option<&'static str>,
    /// More facts: (JSON pointer into the record, value).
    facts: Vec<(&'static str, Value)>,
}

fn want(outcome: &'static str, phase: &'static str) -> Want {
    Want {
        outcome,
        phase,
        anomalies: Vec::new(),
        helo_fallback: false,
        failure: None,
        alert: None,
        tls: None,
        starttls_reply: matches!(phase, "starttls" | "tls_handshake" | "ehlo_tls" | "done"),
        slow: false,
        detail: None,
        facts: Vec::new(),
    }
}

impl Want {
    fn anomaly(mut self, anomaly: &'static str) -> Self {
        self.anomalies.push(anomaly);
        self
    }
    fn fallback(mut self) -> Self {
        self.helo_fallback = true;
        self
    }
    fn failure(mut self, failure: &'static str) -> Self {
        self.failure = Some(failure);
        self
    }
    fn alert(mut self, alert: &'static str) -> Self {
        self.alert = Some(alert);
        self
    }
    fn tls(mut self) -> Self {
        self.tls = Some(None);
        self
    }
    fn detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }
    fn fact(mut self, pointer: &'static str, value: impl Into<Value>) -> Self {
        self.facts.push((pointer, value.into()));
        self
    }
    fn slow(mut self) -> Self {
        self.slow = true;
        self
    }
    fn no_starttls_reply(mut self) -> Self {
        self.starttls_reply = false;
        self
    }
}

/// Mismatches between a record (as JSON) and what it should be.
fn check(want: &Want, record: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut eq = |what: &str, got: &Value, expected: Value| {
        if *got != expected {
            bad.push(format!("{what}: got {got}, want {expected}"));
        }
    };
    eq("outcome", &record["outcome"], want.outcome.into());
    eq("phase", &record["phase"], want.phase.into());
    let mut anomalies: Vec<&str> = record["anomalies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    anomalies.sort_unstable();
    let mut expected = want.anomalies.clone();
    expected.sort_unstable();
    eq("anomalies", &anomalies.into(), expected.into());
    eq(
        "helo_fallback",
        &record["helo_fallback"],
        want.helo_fallback.into(),
    );
    let or_null = |v: Option<&str>| v.map_or(Value::Null, Into::into);
    eq(
        "handshake_failure",
        &record["handshake_failure"],
        or_null(want.failure),
    );
    eq(
        "handshake_alert",
        &record["handshake_alert"],
        or_null(want.alert),
    );
    eq(
        "tls present",
        &record["tls"].is_object().into(),
        want.tls.is_some().into(),
    );
    eq(
        "starttls_reply present",
        &record["starttls_reply"].is_object().into(),
        want.starttls_reply.into(),
    );
    if let Some(part) = want.detail {
        let got = &record["detail"];
        if !got.as_str().is_some_and(|d| d.contains(part)) {
            bad.push(format!("detail: got {got}, want it to contain {part:?}"));
        }
    }
    for (pointer, value) in &want.facts {
        let got = record.pointer(pointer).unwrap_or(&Value::Null);
        if got != value {
            bad.push(format!("{pointer}: got {got}, want {value}"));
        }
    }
    if let Some(source) = want.tls {
        let got = &record["tls"]["source"];
        let ok = match source {
            Some(source) => *got == source,
            None => got.is_null() || *got == "handshake",
        };
        if !ok {
            bad.push(format!("tls.source: got {got}, want {source:?}"));
        }
    }
    bad
}

/// A well-behaved scripted server with a real TLS session and a lab leaf.
fn base(tls: &Tls) -> Script {
    Script::smtp(NAME, tls.clone())
}

/// Greeting `bytes`, the rest well-behaved.
fn greeting(tls: &Tls, bytes: &str) -> Script {
    Script {
        greeting: say(bytes),
        ..base(tls)
    }
}

/// EHLO answered with `ehlo`, HELO with `helo`.
fn ehlo(tls: &Tls, ehlo: &str, helo: &str) -> Script {
    Script {
        ehlo: say(ehlo),
        helo: say(helo),
        ..base(tls)
    }
}

/// STARTTLS answered with `steps`, then `then`.
fn starttls(tls: &Tls, steps: Vec<Step>, then: Tls) -> Script {
    Script {
        starttls: steps,
        tls: then,
        ..base(tls)
    }
}

fn answer(answer: fn(&[u8]) -> Vec<u8>) -> Tls {
    Tls::Answer {
        answer,
        then: vec![Step::Close],
    }
}

fn nothing(_record: &[u8]) -> Vec<u8> {
    Vec::new()
}

/// One row of the table: name, script, what the probe must record.
type Case = (String, Script, Want);

/// Every case.
fn cases(leaf: &Leaf) -> anyhow::Result<Vec<Case>> {
    let real = Tls::Real(scripts::real(leaf)?);
    let t = &real;
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &str, script: Script, want: Want| {
        cases.push((name.to_string(), script, want));
    };
    let ready = || say("220 2.0.0 ready\r\n");
    let failed = |failure| want("starttls_handshake_failed", "tls_handshake").failure(failure);
    let close = || vec![Step::Close];

    // --- greetings: 220 (one or many lines) is normal; a refusal code ends
    // the session; any other code is an anomaly and ends it before STARTTLS.
    for reply in ["221 closing", "250 hello", "354 go ahead"] {
        add(
            &format!("greeting {reply}"),
            greeting(t, &format!("{reply}\r\n")),
            want("protocol_error", "greeting")
                .anomaly("unexpected_greeting_code")
                .no_starttls_reply(),
        );
    }
    // No reply code starts with 1 (RFC 5321 §4.2): the reply does not parse.
    add(
        "greeting 120 wait",
        greeting(t, "120 wait\r\n"),
        want("protocol_error", "greeting")
            .detail("malformed reply line")
            .no_starttls_reply(),
    );
    for reply in [
        "421 4.3.2 busy\r\n",
        "554 5.7.1 go away\r\n",
        "554-5.7.1 go away\r\n554 5.7.1 really\r\n",
    ] {
        add(
            &format!("greeting {}", reply.trim_end()),
            greeting(t, reply),
            want("greeting_refused", "greeting").no_starttls_reply(),
        );
    }
    add(
        "greeting 220 multi-line",
        greeting(
            t,
            "220-mx-scripted.lab.test\r\n220-welcome\r\n220 ESMTP\r\n",
        ),
        want("starttls_ok", "done").tls(),
    );
    add(
        "closed before the greeting",
        Script {
            greeting: close(),
            ..base(t)
        },
        want("protocol_error", "greeting").no_starttls_reply(),
    );
    add(
        "closed mid-greeting",
        Script {
            greeting: vec![Step::send("220-mx-scripted.lab.test\r\n"), Step::Close],
            ..base(t)
        },
        want("protocol_error", "greeting").no_starttls_reply(),
    );

    // --- EHLO and HELO: a wrong class is an anomaly, also when HELO
    // fallback follows; 4xx/5xx other than 421 falls back quietly.
    for reply in ["220 what", "251 what", "354 what"] {
        add(
            &format!("EHLO {reply}"),
            ehlo(t, &format!("{reply}\r\n"), "250 ok\r\n"),
            want("no_starttls", "helo")
                .anomaly("unexpected_ehlo_reply")
                .fallback(),
        );
    }
    for reply in [
        "500 5.5.1 unknown\r\n",
        "550-5.7.1 no\r\n550 5.7.1 EHLO\r\n",
    ] {
        add(
            &format!("EHLO {}", reply.trim_end()),
            ehlo(t, reply, "250 ok\r\n"),
            want("no_starttls", "helo").fallback(),
        );
    }
    add(
        "EHLO 421",
        ehlo(t, "421 4.3.2 closing\r\n", "250 ok\r\n"),
        want("ehlo_failed", "ehlo"),
    );
    for reply in ["354 what", "251 what"] {
        add(
            &format!("HELO {reply}"),
            ehlo(t, "502 no\r\n", &format!("{reply}\r\n")),
            want("ehlo_failed", "helo")
                .anomaly("unexpected_helo_reply")
                .fallback(),
        );
    }
    add(
        "HELO 550",
        ehlo(t, "502 no\r\n", "550 5.7.1 no\r\n"),
        want("ehlo_failed", "helo").fallback(),
    );
    add(
        "closed after EHLO",
        Script {
            ehlo: close(),
            ..base(t)
        },
        want("protocol_error", "ehlo"),
    );
    add(
        "no STARTTLS offered",
        Script::plain(NAME),
        want("no_starttls", "ehlo"),
    );

    // --- STARTTLS replies: only 220 starts TLS; 2xx/3xx are anomalies.
    for reply in ["250 ok", "354 go on"] {
        add(
            &format!("STARTTLS {reply}"),
            starttls(t, say(format!("{reply}\r\n")), real.clone()),
            want("starttls_rejected", "starttls").anomaly("unexpected_starttls_reply"),
        );
    }
    for (reply, then) in [
        ("421 4.3.2 bye", close()),
        ("454 4.7.0 TLS not available", Vec::new()),
        ("502 5.5.1 unknown", Vec::new()),
        ("554 5.7.0 no", Vec::new()),
    ] {
        let mut steps = say(format!("{reply}\r\n"));
        steps.extend(then);
        add(
            &format!("STARTTLS {reply}"),
            starttls(t, steps, Tls::None),
            want("starttls_rejected", "starttls"),
        );
    }
    add(
        "closed after STARTTLS",
        starttls(t, close(), Tls::None),
        want("protocol_error", "starttls").no_starttls_reply(),
    );

    // --- after STARTTLS's 220 ---
    add(
        "220 without a TLS switch",
        starttls(t, ready(), Tls::None),
        failed("invalid_message"),
    );
    add(
        "220 then silence",
        starttls(t, ready(), Tls::Steps(vec![Step::Drain])),
        failed("timeout").slow(),
    );
    add(
        "220 then a close",
        starttls(t, ready(), Tls::Steps(close())),
        failed("closed"),
    );
    for (name, reply) in [
        (
            "injection in the same write",
            "220 ready\r\n250-INJECTED\r\n250 AUTH PLAIN\r\n",
        ),
        (
            "injection without a final CRLF",
            "220 ready\r\n250 INJECTED",
        ),
    ] {
        add(
            name,
            starttls(t, say(reply), real.clone()),
            want("starttls_ok", "done")
                .anomaly("pre_tls_injection")
                .tls(),
        );
    }
    add(
        "injection in a later write",
        starttls(
            t,
            vec![
                Step::send("220 ready\r\n"),
                Step::Pause(Duration::from_millis(300)),
                Step::send("250 INJECTED\r\n"),
            ],
            real.clone(),
        ),
        failed("invalid_message"),
    );
    for (name, answer_with) in [
        (
            "plaintext instead of the ServerHello",
            scripts::plaintext as fn(&[u8]) -> Vec<u8>,
        ),
        ("garbage instead of the ServerHello", scripts::garbage),
    ] {
        add(
            name,
            starttls(t, ready(), answer(answer_with)),
            failed("invalid_message"),
        );
    }
    add(
        "closed after the ClientHello",
        starttls(t, ready(), answer(nothing)),
        failed("closed"),
    );
    add(
        "alert to every hello",
        starttls(t, ready(), answer(scripts::alert_handshake_failure)),
        failed("alert_received").alert("handshake_failure"),
    );
    add(
        "alert after the ServerHello",
        starttls(t, ready(), answer(scripts::server_hello_then_alert)),
        failed("alert_received").alert("handshake_failure"),
    );
    // Recorded, not fatal: the chain entry says it did not parse.
    let unparsable = scripts::presenting(leaf, scripts::unparsable_leaf())?;
    add(
        "certificate that does not parse",
        base(&Tls::Real(unparsable)),
        want("starttls_ok", "done")
            .tls()
            .fact("/tls/verification", "other")
            .fact("/tls/chain/0/parsed", false)
            .fact("/tls/name_match/mx-scripted.lab.test", false),
    );
    let huge = scripts::presenting(leaf, scripts::huge_chain(leaf, 1024 * 1024)?)?;
    add(
        "1 MiB certificate chain",
        base(&Tls::Real(huge)),
        failed("oversized"),
    );

    // --- inside TLS ---
    add(
        "closed after the post-TLS EHLO",
        Script {
            ehlo_tls: close(),
            ..base(t)
        },
        want("starttls_ok", "done").anomaly("ehlo_tls_failed").tls(),
    );
    Ok(cases)
}

/// Serve `script` on a fresh `127.0.0.1` port and probe it once.
async fn probe(script: Script) -> (Value, Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(serve_script(listener, script));
    let mut config = probing::config(None, false);
    config.port = addr.port();
    let tls = probing::lab_tls();
    let started = Instant::now();
    let record = Prober::new(config, tls)
        .probe_target(addr.ip(), vec![NAME.into()])
        .await;
    let took = started.elapsed();
    server.abort();
    (serde_json::to_value(&record).expect("record as JSON"), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_odd_peer_gets_its_record_in_bounded_time() {
    let (chain_pem, key_pem) = lab::certs().issue(NAME).expect("a lab leaf");
    let leaf = Leaf { chain_pem, key_pem };
    let cases = cases(&leaf).expect("the corpus builds");
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let fast = TEST_TIMEOUTS.command.min(TEST_TIMEOUTS.handshake);
    let slow = TEST_TIMEOUTS.session + Duration::from_secs(2);
    let mut runs = tokio::task::JoinSet::new();
    for (name, script, want) in cases {
        runs.spawn(async move {
            let (record, took) = probe(script).await;
            let mut bad = check(&want, &record);
            let bound = if want.slow { slow } else { fast };
            if took >= bound {
                bad.push(format!("took {took:?}, bound {bound:?}"));
            }
            (name, bad, record, took)
        });
    }
    let mut failures = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (name, bad, record, took) = run.expect("a case ran");
        eprintln!("{took:>12.3?}  {name}");
        if !bad.is_empty() {
            failures.push(format!(
                "{name}:\n  {}\n  record: {record}",
                bad.join("\n  ")
            ));
        }
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A server that presents a valid lab-CA leaf for the name but signs the
/// handshake with another key (what an attacker without the server's key
/// would do). OpenSSL, and so every OpenSSL MTA, fails such a handshake,
/// and so does the probe: `handshake_failure: bad_signature`, and no first
/// flight (it would only show the copied certificate again).
#[tokio::test]
async fn a_handshake_signed_with_another_key_fails() {
    let certs = lab::certs();
    let (chain_pem, key_pem) = certs.issue(NAME).expect("a lab leaf");
    let genuine = Leaf { chain_pem, key_pem };
    let (chain_pem, key_pem) = certs.issue(NAME).expect("another lab leaf");
    let impostor = Leaf { chain_pem, key_pem };
    let chain = genuine.chain_pem.clone();
    let presented = rustls::pki_types::pem::PemObject::pem_slice_iter(chain.as_bytes())
        .collect::<Result<Vec<rustls::pki_types::CertificateDer<'static>>, _>>()
        .expect("the genuine chain");
    let acceptor = scripts::presenting(&impostor, presented).expect("a TLS server");
    let (record, _) = probe(base(&Tls::Real(acceptor))).await;
    let bad = check(&failed_want("bad_signature"), &record);
    assert!(bad.is_empty(), "{}\n{record}", bad.join("\n"));
}

fn failed_want(failure: &'static str) -> Want {
    want("starttls_handshake_failed", "tls_handshake").failure(failure)
}
