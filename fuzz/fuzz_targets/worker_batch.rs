//! A worker's result batch as the coordinator decodes it: protobuf bytes to
//! `ResultBatch`, then its records (JSON, one per string) to typed records.
//! Never a panic: a batch decodes or is refused as a whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxscope_common::wire::proto;
use mxscope_common::wire::task::ReportedBatch;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = proto::ResultBatch::decode(data) {
        let _ = ReportedBatch::try_from(batch);
    }
    // The records alone, as the bytes of one JSON record.
    let json = String::from_utf8_lossy(data).into_owned();
    let batch = proto::ResultBatch {
        worker_id: "w".into(),
        task_id: "s1/A/r000000".into(),
        epoch: 1,
        records_json: vec![json],
        task_complete: true,
    };
    let _ = ReportedBatch::try_from(batch);
});
