//! Reading `mxscope report --format json` output in tests.

use std::collections::BTreeMap;

use serde_json::Value;

/// The distribution `name` under `parent` (a vantage report or its security
/// section) as (total, the rows with a non-zero count). Panics, naming it,
/// when the distribution is missing.
pub fn distribution(parent: &Value, name: &str) -> (u64, BTreeMap<String, u64>) {
    let d = parent["distributions"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {parent}"));
    let rows = d["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["count"].as_u64().unwrap_or(0) > 0)
        .map(|r| {
            (
                r["value"].as_str().unwrap_or_default().to_string(),
                r["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (d["total"].as_u64().unwrap_or(0), rows)
}
