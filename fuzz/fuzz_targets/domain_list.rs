//! Domain-list parsing (trim, lowercase, IDNA, comments, line-numbered
//! errors) on arbitrary files: never panic, strict or lenient.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_common::parse_domain_list;

fuzz_target!(|data: &[u8]| {
    let _ = parse_domain_list(data, false);
    let _ = parse_domain_list(data, true);
    for line in String::from_utf8_lossy(data).lines() {
        let _ = mxscope_common::DomainName::parse(line);
    }
});
