//! TLS-RPT TXT records (RFC 8460) on arbitrary text: never panic, and the
//! verdict of a record set is computed without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::security::tlsrpt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = tlsrpt::is_tlsrpt_txt(&text);
    let _ = tlsrpt::parse_tlsrpt(&text);
    let records: Vec<String> = text.split('\n').map(str::to_string).collect();
    let _ = tlsrpt::evaluate(Ok(&records));
});
