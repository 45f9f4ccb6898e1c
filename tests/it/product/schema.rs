//! The record's JSON Schema (`docs/record.schema.json`, derived from the
//! types) against a lab scan's export, checked by an independent validator
//! (Python's `jsonschema`, installed with `check-jsonschema` by
//! `tests/lab/install.sh`).

use std::process::Command;

use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::scanning::{mxscope, scan_into};
use serde_json::Value;

const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
validator = Draft202012Validator(schema)
errors, kinds = [], {}
for n, line in enumerate(open(sys.argv[2]), 1):
    if not line.strip():
        continue
    record = json.loads(line)
    kinds[record.get("kind")] = kinds.get(record.get("kind"), 0) + 1
    errors += [f"line {n}: {e.json_path}: {e.message}" for e in validator.iter_errors(record)]
print(json.dumps({"errors": errors, "kinds": kinds}))
"#;

/// Validate the JSON Lines file `records` against the docs' schema.
fn validate(records: &std::path::Path) -> Value {
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/record.schema.json");
    let out = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(schema)
        .arg(records)
        .output()
        .expect("python3 runs (tests/lab/install.sh installs jsonschema)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the validator's JSON")
}

#[test]
fn every_record_of_a_lab_scan_matches_the_schema() {
    lab::postfix();
    lab::exim();
    lab::fakes();
    let mut domains: Vec<String> = [
        domains::SINGLE,
        domains::MULTI,
        domains::NULLMX,
        domains::IMPLICIT,
        domains::NXDOMAIN,
        domains::NODATA,
        domains::MX_NOADDR,
        domains::V6,
    ]
    .iter()
    .map(|d| d.to_string())
    .collect();
    for host in [
        MX_EXPIRED,
        MX_SELFSIGNED,
        MX_SMALLKEY,
        MX_NOSTARTTLS,
        MX_REFUSE,
        MX_TLS454,
        MX_CLOSED,
        MX_INJECT,
        MX_EXIM,
    ] {
        domains.push(domains::for_host(&host));
    }
    let names: Vec<&str> = domains.iter().map(String::as_str).collect();
    let (data, _) = scan_into("schema", &names, &["--legacy", "--tls-depth", "classes"]);
    let dir = data.parent().expect("the test's folder").to_path_buf();
    let export = mxscope(&["export", "s1"], &data);
    let records = dir.join("records.jsonl");
    std::fs::write(&records, &export).expect("the export");

    let verdict = validate(&records);
    assert_eq!(verdict["errors"], Value::Array(Vec::new()), "{verdict}");
    assert_eq!(verdict["kinds"]["domain"], domains.len(), "{verdict}");
    assert!(
        verdict["kinds"]["target"].as_u64().unwrap_or(0) >= 10,
        "{verdict}"
    );

    // The schema bites: a target with an unknown outcome, a domain without
    // its name, a record with a number where a string belongs.
    let records: Vec<Value> = export
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let of_kind = |kind: &'static str| records.iter().filter(move |r| r["kind"] == kind).cloned();
    let mut targets = of_kind("target");
    let mut bad_outcome = targets.next().expect("a target");
    bad_outcome["outcome"] = "bogus".into();
    let mut no_name = of_kind("domain").next().expect("a domain");
    no_name.as_object_mut().expect("an object").remove("domain");
    let mut bad_port = targets.next().expect("a second target");
    bad_port["port"] = "twenty-five".into();
    let broken: Vec<String> = [bad_outcome, no_name, bad_port]
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(broken.len(), 3);
    let broken_path = dir.join("broken.jsonl");
    std::fs::write(&broken_path, broken.join("\n")).expect("the broken records");
    let verdict = validate(&broken_path);
    let errors = verdict["errors"].as_array().expect("errors");
    for line in ["line 1:", "line 2:", "line 3:"] {
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.starts_with(line))),
            "{line} rejected: {verdict}"
        );
    }
}
