//! The whole pre-TLS and post-TLS dialogue driven by arbitrary server bytes:
//! the reply parser feeds the sans-IO states exactly as the driver does. It
//! must never panic, never send anything but EHLO, HELO, STARTTLS and QUIT,
//! and always end (each reply moves the dialogue on).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::smtp::dialogue::{Command, ExpectGreeting, Step, Transcript};
use mxscope_worker::smtp::reply::{Limits, ReplyParser};

fuzz_target!(|data: &[u8]| {
    let name: mxscope_common::EhloName = "fuzz.example".parse().expect("a valid name");
    let mut parser = ReplyParser::new(Limits::default());
    if parser.feed(data).is_err() {
        return;
    }
    let mut transcript = Transcript::default();
    let mut state = ExpectGreeting::start(name.clone());
    let mut tls_started = false;
    for _ in 0..16 {
        let reply = match parser.next_reply() {
            Ok(Some(reply)) => reply,
            Ok(None) | Err(_) => return,
        };
        let step = state.on_reply(&reply, &mut transcript);
        let command = match step {
            Step::Send(command, next) => {
                state = next;
                command
            }
            Step::StartTls(after) => {
                assert!(!tls_started, "TLS asked for twice");
                tls_started = true;
                // Bytes buffered after STARTTLS's 220 are injection: dropped.
                let _ = parser.take_buffered();
                let (command, next) = after.start(&name);
                state = next;
                command
            }
            Step::Done(_) => return,
        };
        let wire = command.to_bytes();
        assert!(matches!(
            command,
            Command::Ehlo(_) | Command::Helo(_) | Command::StartTls | Command::Quit
        ));
        assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert!(wire.ends_with(b"\r\n"));
    }
    panic!("the dialogue did not end within 16 replies");
});
