//! `mxscope_worker::tls::legacy::classify` on arbitrary bytes, for every version:
//! it must never panic, and the support of a verdict, once reached, must not change when
//! more bytes arrive (the driver stops reading at the first verdict).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::tls::legacy::{classify, Answer, LegacyVersion};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a split point: what was received before the
    // "last read".
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (before, _) = data.split_at(split);
    for version in LegacyVersion::ALL {
        let whole = classify(version, data);
        // The support stays; a "not TLS" detail may show more bytes.
        if let Answer::Verdict(early, _) = classify(version, before) {
            match whole {
                Answer::Verdict(later, _) => assert_eq!(early, later, "support changed"),
                Answer::Incomplete => panic!("verdict lost after more bytes"),
            }
        }
    }
});
