//! `mxscope_worker::smtp::reply::ReplyParser` on arbitrary bytes: it must
//! never panic, whatever a server sends.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::smtp::reply::{Limits, ReplyParser};

fuzz_target!(|data: &[u8]| {
    let mut parser = ReplyParser::new(Limits::default());
    let _ = parser.parse(data);
});
