//! Certificate analysis and RFC 6125 name matching on arbitrary DER: never
//! panic; an unparsable certificate keeps its DER.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::tls::cert;

fuzz_target!(|data: &[u8]| {
    let info = cert::analyse(data);
    if !info.parsed {
        assert!(info.der_base64.is_some(), "unparsed DER is kept");
    }
    let _ = cert::name_matches(data, "mx.example.org");
    let _ = cert::name_matches(data, "*.example.org");
    let _ = cert::analyse_chain(&[data, data]);
});
