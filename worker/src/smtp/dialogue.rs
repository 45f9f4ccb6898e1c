//! The probe's SMTP dialogue as a sans-IO state machine (DESIGN §4).
//!
//! `greeting → EHLO (→ HELO on failure) → STARTTLS → [TLS] → EHLO → QUIT`.
//! Each state is a type that consumes itself with the reply it expected and
//! returns a [`Step`]: a command to send and the next state, the request to
//! start TLS, or the end of the dialogue with its outcome. Facts (greeting,
//! EHLO keywords, ...) are written to [`Transcript`]. No `MAIL FROM`, ever.

use mxscope_common::{Anomaly, EhloName, Outcome, Phase, Reply};

use super::reply::ParsedReply;

/// A command the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(EhloName),
    Helo(EhloName),
    StartTls,
    Quit,
}

impl Command {
    /// The command on the wire, CRLF-terminated.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Ehlo(name) => format!("EHLO {name}\r\n").into_bytes(),
            Self::Helo(name) => format!("HELO {name}\r\n").into_bytes(),
            Self::StartTls => b"STARTTLS\r\n".to_vec(),
            Self::Quit => b"QUIT\r\n".to_vec(),
        }
    }

    /// The phase this command's reply belongs to.
    pub fn phase(&self, after_tls: bool) -> Phase {
        match self {
            Self::Ehlo(_) if after_tls => Phase::EhloTls,
            Self::Ehlo(_) => Phase::Ehlo,
            Self::Helo(_) => Phase::Helo,
            Self::StartTls => Phase::Starttls,
            Self::Quit => Phase::Quit,
        }
    }
}

/// What the dialogue learnt, in the record's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    pub greeting: Option<Reply>,
    pub ehlo: Vec<String>,
    pub helo_fallback: bool,
    pub starttls_reply: Option<Reply>,
    pub ehlo_tls: Vec<String>,
    pub anomalies: Vec<Anomaly>,
}

impl Transcript {
    fn note(&mut self, reply: &ParsedReply) {
        for anomaly in &reply.anomalies {
            self.anomaly(*anomaly);
        }
    }

    /// Record an anomaly once.
    pub fn anomaly(&mut self, anomaly: Anomaly) {
        if !self.anomalies.contains(&anomaly) {
            self.anomalies.push(anomaly);
        }
    }
}

/// How the dialogue ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub outcome: Outcome,
    pub phase: Phase,
    pub detail: Option<String>,
    /// Whether the connection is still fit for a polite `QUIT`.
    pub send_quit: bool,
}

/// The next move after a reply.
#[derive(Debug)]
pub enum Step {
    /// Send `command`, then feed its reply to `next`.
    Send(Command, State),
    /// STARTTLS was accepted (220): upgrade the connection, then call
    /// [`AfterTls::start`] (or stop here, for a legacy-version probe).
    StartTls(AfterTls),
    /// The dialogue is over.
    Done(End),
}

/// A state waiting for one reply.
#[derive(Debug)]
pub enum State {
    Greeting(ExpectGreeting),
    Ehlo(ExpectEhlo),
    Helo(ExpectHelo),
    StartTls(ExpectStartTls),
    EhloTls(ExpectEhloTls),
}

impl State {
    /// Feed the reply this state was waiting for.
    pub fn on_reply(self, reply: &ParsedReply, transcript: &mut Transcript) -> Step {
        transcript.note(reply);
        match self {
            Self::Greeting(s) => s.on_reply(reply, transcript),
            Self::Ehlo(s) => s.on_reply(reply, transcript),
            Self::Helo(s) => s.on_reply(reply, transcript),
            Self::StartTls(s) => s.on_reply(reply, transcript),
            Self::EhloTls(s) => s.on_reply(reply, transcript),
        }
    }

    /// The phase this state belongs to (for timeouts and outcomes).
    pub fn phase(&self) -> Phase {
        match self {
            Self::Greeting(_) => Phase::Greeting,
            Self::Ehlo(_) => Phase::Ehlo,
            Self::Helo(_) => Phase::Helo,
            Self::StartTls(_) => Phase::Starttls,
            Self::EhloTls(_) => Phase::EhloTls,
        }
    }
}

/// A completion or intermediate code where the command's own success code was
/// due: 1xx–3xx other than the expected one (the caller checked that one).
/// 4xx/5xx are ordinary failures, not anomalies.
fn wrong_class(code: u16) -> bool {
    code < 400
}

fn done(outcome: Outcome, phase: Phase, reply: &ParsedReply, send_quit: bool) -> Step {
    Step::Done(End {
        outcome,
        phase,
        detail: Some(format!("{} {}", reply.code, reply.text())),
        send_quit,
    })
}

/// Start of a session: waiting for the server's greeting.
#[derive(Debug)]
pub struct ExpectGreeting {
    ehlo_name: EhloName,
}

impl ExpectGreeting {
    /// The first state of a session.
    pub fn start(ehlo_name: EhloName) -> State {
        State::Greeting(Self { ehlo_name })
    }

    fn on_reply(self, reply: &ParsedReply, transcript: &mut Transcript) -> Step {
        transcript.greeting = Some(reply.to_record());
        if reply.code == 220 {
            let command = Command::Ehlo(self.ehlo_name.clone());
            Step::Send(
                command,
                State::Ehlo(ExpectEhlo {
                    ehlo_name: self.ehlo_name,
                }),
            )
        } else if reply.code >= 400 {
            // 4xx/5xx (RFC 5321 §3.1: 554 means "no service here"): be polite.
            done(Outcome::GreetingRefused, Phase::Greeting, reply, true)
        } else {
            // 221, 250, 354, 1xx ...: not a greeting; nothing after it can be trusted.
            transcript.anomaly(Anomaly::UnexpectedGreetingCode);
            done(Outcome::ProtocolError, Phase::Greeting, reply, true)
        }
    }
}

/// EHLO sent before TLS.
#[derive(Debug)]
pub struct ExpectEhlo {
    ehlo_name: EhloName,
}

impl ExpectEhlo {
    fn on_reply(self, reply: &ParsedReply, transcript: &mut Transcript) -> Step {
        if reply.code == 250 {
            transcript.ehlo = reply.ehlo_keywords();
            if reply.has_keyword("STARTTLS") {
                Step::Send(Command::StartTls, State::StartTls(ExpectStartTls))
            } else {
                done(Outcome::NoStarttls, Phase::Ehlo, reply, true)
            }
        } else if reply.code == 421 {
            // The server is closing the channel: no HELO, no QUIT.
            done(Outcome::EhloFailed, Phase::Ehlo, reply, false)
        } else {
            if wrong_class(reply.code) {
                transcript.anomaly(Anomaly::UnexpectedEhloReply);
            }
            transcript.helo_fallback = true;
            Step::Send(Command::Helo(self.ehlo_name), State::Helo(ExpectHelo))
        }
    }
}

/// HELO sent after EHLO failed: HELO cannot advertise STARTTLS.
#[derive(Debug)]
pub struct ExpectHelo;

impl ExpectHelo {
    fn on_reply(self, reply: &ParsedReply, transcript: &mut Transcript) -> Step {
        if reply.code == 250 {
            done(Outcome::NoStarttls, Phase::Helo, reply, true)
        } else {
            if wrong_class(reply.code) {
                transcript.anomaly(Anomaly::UnexpectedHeloReply);
            }
            done(Outcome::EhloFailed, Phase::Helo, reply, reply.code != 421)
        }
    }
}

/// STARTTLS sent, alone (never pipelined).
#[derive(Debug)]
pub struct ExpectStartTls;

impl ExpectStartTls {
    fn on_reply(self, reply: &ParsedReply, transcript: &mut Transcript) -> Step {
        transcript.starttls_reply = Some(reply.to_record());
        if reply.code == 220 {
            Step::StartTls(AfterTls)
        } else {
            if wrong_class(reply.code) {
                transcript.anomaly(Anomaly::UnexpectedStarttlsReply);
            }
            done(
                Outcome::StarttlsRejected,
                Phase::Starttls,
                reply,
                reply.code != 421,
            )
        }
    }
}

/// The TLS session is up; capabilities learnt before it are void (RFC 3207 §4.2).
#[derive(Debug)]
pub struct AfterTls;

impl AfterTls {
    /// The EHLO to send over TLS and the state awaiting its reply.
    pub fn start(self, ehlo_name: &EhloName) -> (Command, State) {
        (
            Command::Ehlo(ehlo_name.clone()),
            State::EhloTls(ExpectEhloTls),
        )
    }
}

/// EHLO sent over TLS.
#[derive(Debug)]
pub struct ExpectEhloTls;

impl ExpectEhloTls {
    fn on_reply(self, reply: &ParsedReply, transcript: &mut Transcript) -> Step {
        let detail = if reply.code == 250 {
            transcript.ehlo_tls = reply.ehlo_keywords();
            if reply.has_keyword("STARTTLS") {
                transcript.anomaly(Anomaly::StarttlsAfterTls);
            }
            None
        } else {
            transcript.anomaly(Anomaly::EhloTlsFailed);
            Some(format!("EHLO after TLS: {} {}", reply.code, reply.text()))
        };
        Step::Done(End {
            outcome: Outcome::StarttlsOk,
            phase: Phase::Done,
            detail,
            send_quit: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::{Limits, ReplyParser};

    fn name() -> EhloName {
        "probe.example".parse().unwrap()
    }

    fn reply(wire: &str) -> ParsedReply {
        ReplyParser::new(Limits::default())
            .parse(wire.as_bytes())
            .unwrap()
            .unwrap()
    }

    /// Run the dialogue over canned replies; returns the commands sent and the end.
    fn run(replies: &[&str]) -> (Vec<Command>, Transcript, Option<End>) {
        let mut transcript = Transcript::default();
        let mut state = ExpectGreeting::start(name());
        let mut sent = Vec::new();
        for wire in replies {
            match state.on_reply(&reply(wire), &mut transcript) {
                Step::Send(command, next) => {
                    sent.push(command);
                    state = next;
                }
                Step::StartTls(after) => {
                    let (command, next) = after.start(&name());
                    sent.push(command);
                    state = next;
                }
                Step::Done(end) => return (sent, transcript, Some(end)),
            }
        }
        (sent, transcript, None)
    }

    #[test]
    fn full_starttls_session() {
        let (sent, t, end) = run(&[
            "220 mx ESMTP\r\n",
            "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n",
            "250-mx\r\n250 AUTH PLAIN\r\n",
        ]);
        assert_eq!(
            sent,
            [
                Command::Ehlo(name()),
                Command::StartTls,
                Command::Ehlo(name())
            ]
        );
        assert_eq!(t.ehlo, ["PIPELINING", "STARTTLS"]);
        assert_eq!(t.ehlo_tls, ["AUTH PLAIN"]);
        assert_eq!(end.unwrap().outcome, Outcome::StarttlsOk);
    }

    #[test]
    fn outcomes_per_reply() {
        let cases: &[(&[&str], Outcome, Phase)] = &[
            (
                &["554 go away\r\n"],
                Outcome::GreetingRefused,
                Phase::Greeting,
            ),
            (&["421 busy\r\n"], Outcome::GreetingRefused, Phase::Greeting),
            (
                &["220 x\r\n", "250 x\r\n"],
                Outcome::NoStarttls,
                Phase::Ehlo,
            ),
            (
                &["220 x\r\n", "250-x\r\n250 XXXXXXXA\r\n"],
                Outcome::NoStarttls,
                Phase::Ehlo,
            ),
            (
                &["220 x\r\n", "500 what\r\n", "250 x\r\n"],
                Outcome::NoStarttls,
                Phase::Helo,
            ),
            (
                &["220 x\r\n", "500 what\r\n", "500 no\r\n"],
                Outcome::EhloFailed,
                Phase::Helo,
            ),
            (
                &["220 x\r\n", "421 bye\r\n"],
                Outcome::EhloFailed,
                Phase::Ehlo,
            ),
            (
                &["220 x\r\n", "250-x\r\n250 STARTTLS\r\n", "454 no tls\r\n"],
                Outcome::StarttlsRejected,
                Phase::Starttls,
            ),
        ];
        for (replies, outcome, phase) in cases {
            let (_, _, end) = run(replies);
            let end = end.expect("dialogue ended");
            assert_eq!((end.outcome, end.phase), (*outcome, *phase), "{replies:?}");
        }
    }

    #[test]
    fn replies_of_the_wrong_class_are_anomalies() {
        let cases: &[(&[&str], Outcome, Phase, &[Anomaly])] = &[
            (
                &["221 bye\r\n"],
                Outcome::ProtocolError,
                Phase::Greeting,
                &[Anomaly::UnexpectedGreetingCode],
            ),
            (
                &["354 go on\r\n"],
                Outcome::ProtocolError,
                Phase::Greeting,
                &[Anomaly::UnexpectedGreetingCode],
            ),
            (
                &["250 hello\r\n"],
                Outcome::ProtocolError,
                Phase::Greeting,
                &[Anomaly::UnexpectedGreetingCode],
            ),
            (
                &["220 x\r\n", "220 x\r\n", "250 ok\r\n"],
                Outcome::NoStarttls,
                Phase::Helo,
                &[Anomaly::UnexpectedEhloReply],
            ),
            (
                &["220 x\r\n", "354 x\r\n", "550 no\r\n"],
                Outcome::EhloFailed,
                Phase::Helo,
                &[Anomaly::UnexpectedEhloReply],
            ),
            (
                &["220 x\r\n", "500 x\r\n", "251 odd\r\n"],
                Outcome::EhloFailed,
                Phase::Helo,
                &[Anomaly::UnexpectedHeloReply],
            ),
            (
                &["220 x\r\n", "250-x\r\n250 STARTTLS\r\n", "250 fine\r\n"],
                Outcome::StarttlsRejected,
                Phase::Starttls,
                &[Anomaly::UnexpectedStarttlsReply],
            ),
            (
                &["220 x\r\n", "250-x\r\n250 STARTTLS\r\n", "354 x\r\n"],
                Outcome::StarttlsRejected,
                Phase::Starttls,
                &[Anomaly::UnexpectedStarttlsReply],
            ),
            (
                &["220 x\r\n", "250-x\r\n250 STARTTLS\r\n", "554 no\r\n"],
                Outcome::StarttlsRejected,
                Phase::Starttls,
                &[],
            ),
            (
                &["220 x\r\n", "502 x\r\n", "250 ok\r\n"],
                Outcome::NoStarttls,
                Phase::Helo,
                &[],
            ),
        ];
        for (replies, outcome, phase, anomalies) in cases {
            let (sent, t, end) = run(replies);
            let end = end.expect("dialogue ended");
            assert_eq!((end.outcome, end.phase), (*outcome, *phase), "{replies:?}");
            assert_eq!(t.anomalies, *anomalies, "{replies:?}");
            if end.phase == Phase::Greeting {
                assert!(sent.is_empty(), "nothing after an odd greeting");
            }
        }
    }

    #[test]
    fn helo_fallback_is_recorded() {
        let (sent, t, _) = run(&["220 x\r\n", "502 no ehlo\r\n", "250 ok\r\n"]);
        assert_eq!(sent.last(), Some(&Command::Helo(name())));
        assert!(t.helo_fallback);
    }

    #[test]
    fn failed_ehlo_after_tls_is_an_anomaly_not_a_failure() {
        let (_, t, end) = run(&[
            "220 x\r\n",
            "250-x\r\n250 STARTTLS\r\n",
            "220 go\r\n",
            "503 bad sequence\r\n",
        ]);
        assert_eq!(end.unwrap().outcome, Outcome::StarttlsOk);
        assert_eq!(t.anomalies, [Anomaly::EhloTlsFailed]);
    }
}
