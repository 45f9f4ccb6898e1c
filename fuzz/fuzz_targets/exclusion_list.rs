//! Exclusion lists (the operator's opt-out file: domains, MX names, IPs and
//! CIDRs, comments): never panic; what parses answers lookups and writes
//! itself back to lines that parse to the same list.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use mxscope_common::politeness::exclusions::Exclusions;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(list) = Exclusions::parse(&text) else {
        return;
    };
    let lines = list.to_lines();
    let again = Exclusions::parse(&lines.join("\n")).expect("its own lines parse");
    assert_eq!(again.len(), list.len(), "{lines:?}");
    for line in text.lines().take(64) {
        let word = line.trim();
        let _ = list.domain(word);
        let _ = list.mx_name(word);
        if let Ok(ip) = word.parse::<IpAddr>() {
            let _ = list.address(ip);
        }
    }
    let _ = list.address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let _ = list.target(IpAddr::V6(Ipv6Addr::LOCALHOST), &["mx.example".into()]);
});
