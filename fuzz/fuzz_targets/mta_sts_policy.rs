//! MTA-STS policy bodies and TXT records (RFC 8461) on arbitrary input:
//! never panic; a parsed policy's MX patterns match without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::security::mtasts;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = mtasts::parse_policy(data) {
        for pattern in &policy.mx {
            let _ = mtasts::mx_matches(pattern, "mx.example.org");
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = mtasts::is_sts_txt(&text);
    let _ = mtasts::parse_sts_txt(&text);
    let records: Vec<String> = text.split('\n').map(str::to_string).collect();
    let _ = mtasts::select_sts_txt(&records);
});
