//! What the tests run against the lab: mxscope itself ([`probing`]: a
//! prober and resolver aimed at the lab; [`scanning`]: `mxscope scan` of lab
//! domains read back with `export`; [`cluster`]: real coordinator and worker
//! processes; [`report_json`]: reading JSON reports), an [`abuse`]ive client
//! of the coordinator (budget test, soak), a real Prometheus scraping them
//! ([`ops`]: with promtool and a bounded HTTP GET), and [`sslyze`], the TLS
//! depth's oracle.

pub mod abuse;
pub mod cluster;
pub mod ops;
pub mod probing;
pub mod report_json;
pub mod scanning;
pub mod sslyze;
