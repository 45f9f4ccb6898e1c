//! sslyze (PyPI, installed by `tests/lab/install.sh`) as the oracle of the
//! TLS depth: run it on one lab address and read what it accepted per
//! version, what it tried, and the curves it found. Only ever aimed at
//! loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;

use anyhow::Context as _;

/// What sslyze says of one server.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    /// Accepted suites per version (`tls1_2` → IANA names); versions with
    /// none are absent.
    pub accepted: BTreeMap<String, BTreeSet<String>>,
    /// Every suite it tried per version (accepted or rejected).
    pub tried: BTreeMap<String, BTreeSet<String>>,
    /// Elliptic curves accepted for ECDHE, in IANA names (`secp256r1`).
    pub curves: BTreeSet<String>,
    /// Its ROBOT verdict (`NOT_VULNERABLE_NO_ORACLE`, …) when `--robot` ran.
    pub robot: Option<String>,
}

/// The record's version keys and sslyze's scan names.
const SCANS: [(&str, &str); 5] = [
    ("ssl_3_0_cipher_suites", "ssl3"),
    ("tls_1_0_cipher_suites", "tls1_0"),
    ("tls_1_1_cipher_suites", "tls1_1"),
    ("tls_1_2_cipher_suites", "tls1_2"),
    ("tls_1_3_cipher_suites", "tls1_3"),
];

/// Run `python3 -m sslyze --starttls smtp` on `addr` with `scans` (e.g.
/// `--tlsv1_2`; none: its full default run) and read the result.
pub fn run(addr: SocketAddr, scans: &[&str]) -> anyhow::Result<Oracle> {
    anyhow::ensure!(addr.ip().is_loopback(), "sslyze only ever scans the lab");
    let dir = tempfile::tempdir()?;
    let json_file = dir.path().join("sslyze.json");
    let out = Command::new("python3")
        .args(["-m", "sslyze", "--starttls", "smtp", "--quiet"])
        .arg(format!("--json_out={}", json_file.display()))
        .args(scans)
        .arg(addr.to_string())
        .output()
        .context("python3 -m sslyze (tests/lab/install.sh installs it)")?;
    anyhow::ensure!(
        json_file.exists(),
        "sslyze on {addr} wrote no JSON: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A full run's JSON holds integers beyond 64 bits (keys, serials):
    // Python reads it and hands over the scans this reads, or the reason
    // there are none.
    let extract = "import json,sys\n\
        s=json.load(open(sys.argv[1]))['server_scan_results'][0]\n\
        r=s.get('scan_result') or {}\n\
        print(json.dumps({'error': s.get('connectivity_error_trace'), 'scans': {k: r[k] for k in r \
        if k.endswith('_cipher_suites') or k in ('elliptic_curves', 'robot')}}))";
    let out = Command::new("python3")
        .args(["-c", extract])
        .arg(&json_file)
        .output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    let result = &json["scans"];
    let names = |list: &serde_json::Value| -> BTreeSet<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["cipher_suite"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    let mut oracle = Oracle {
        curves: result["elliptic_curves"]["result"]["supported_curves"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .map(|name| match name {
                "prime256v1" => "secp256r1".to_string(),
                other => other.to_ascii_lowercase(),
            })
            .collect(),
        robot: result["robot"]["result"]["robot_result"]
            .as_str()
            .map(str::to_owned),
        ..Oracle::default()
    };
    for (key, ours) in SCANS {
        if result[key]["status"] == "NOT_SCHEDULED" {
            continue;
        }
        let scan = &result[key]["result"];
        if !scan["accepted_cipher_suites"].is_array() {
            anyhow::ensure!(
                scans.is_empty() || !result[key].is_object(),
                "sslyze on {addr}: {key} failed: {} {}",
                result[key],
                json["error"]
            );
            continue;
        }
        let accepted = names(&scan["accepted_cipher_suites"]);
        let mut tried = names(&scan["rejected_cipher_suites"]);
        tried.extend(accepted.iter().cloned());
        oracle.tried.insert(ours.to_owned(), tried);
        if !accepted.is_empty() {
            oracle.accepted.insert(ours.to_owned(), accepted);
        }
    }
    anyhow::ensure!(
        !oracle.tried.is_empty() || oracle.robot.is_some(),
        "sslyze on {addr} scanned nothing: {}",
        json["error"]
    );
    Ok(oracle)
}
