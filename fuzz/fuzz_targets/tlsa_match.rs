//! DANE matching (RFC 7672) of arbitrary TLSA records against arbitrary
//! certificate bytes: never panic.

#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use mxscope_common::record::security_dns::TlsaRecord;
use mxscope_worker::security::dane;

fuzz_target!(|data: &[u8]| {
    let [usage, selector, matching_type, split, rest @ ..] = data else {
        return;
    };
    let split = usize::from(*split).min(rest.len());
    let (association, chain) = rest.split_at(split);
    let record = TlsaRecord {
        usage: *usage % 5,
        selector: *selector % 3,
        matching_type: *matching_type % 4,
        data_hex: dane::encode_hex(association),
    };
    let half = chain.len() / 2;
    let chain = vec![chain[..half].to_vec(), chain[half..].to_vec()];
    let _ = dane::dane_verdict(&[record], &chain, "mx.example.org", SystemTime::now());
});
