//! The TLS depth's readers on arbitrary bytes: `reply::read` (ServerHello,
//! alert, HelloRetryRequest) for every version, `reply::read_sslv2`, and the
//! stapled-OCSP reader `cert::ocsp::read`. None may panic; a reply decided
//! on a prefix stays decided the same way with more bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_worker::tls::cert::ocsp;
use mxscope_worker::tls::depth::catalog::DepthVersion;
use mxscope_worker::tls::depth::reply;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (before, _) = data.split_at(split);
    let offered: Vec<u16> = (0..512).collect();
    for version in DepthVersion::ALL {
        let whole = reply::read(version, &offered, data);
        if let Some(early) = reply::read(version, &offered, before) {
            assert_eq!(Some(early), whole, "a decided reply changed with more bytes");
        }
    }
    let _ = reply::read_sslv2(data);
    let staple = ocsp::read(data, None, None);
    assert!(!staple.status.is_empty());
});
