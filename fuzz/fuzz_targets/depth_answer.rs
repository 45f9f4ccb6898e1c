//! The TLS depth's readers on arbitrary bytes: `reply::read` (ServerHello,
//! alert, HelloRetryRequest) for every version, `reply::read_sslv2`, and the
//! stapled-OCSP reader `cert::ocsp::read`. None may panic; a reply decided
//! on a prefix stays the same kind of reply (the same pick) with more bytes.

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
            // The kind stays (and a pick stays the same pick); a "not TLS"
            // detail may show more bytes.
            match (early, whole) {
                (reply::Reply::Picked(a), Some(reply::Reply::Picked(b))) => assert_eq!(a, b),
                (reply::Reply::Refused(_), Some(reply::Reply::Refused(_)))
                | (reply::Reply::Error(_), Some(reply::Reply::Error(_))) => {}
                (early, whole) => panic!("{early:?} became {whole:?} with more bytes"),
            }
        }
    }
    let _ = reply::read_sslv2(data);
    let staple = ocsp::read(data, None, None);
    assert!(!staple.status.is_empty());
});
