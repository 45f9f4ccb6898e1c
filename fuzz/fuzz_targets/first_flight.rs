//! `mxscope_worker::tls::first_flight::parse` on arbitrary bytes: it must never
//! panic, and once it decides, more bytes must not change the decision (the
//! driver stops reading at the first decision).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::tls::first_flight::{parse, Flight};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b) * 8).min(data.len());
    let (before, _) = data.split_at(split);
    if let Flight::Done(early) = parse(before) {
        match parse(data) {
            Flight::Done(later) => assert_eq!(early, later, "decision changed"),
            Flight::Incomplete => panic!("decision lost after more bytes"),
        }
    }
});
