//! `mxscope export --format parquet` read by DuckDB (PyPI `duckdb`,
//! installed by tests/lab/install.sh): the queries of docs/sql give
//! exactly the numbers of `mxscope report --format json` and of the
//! records themselves.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::{bin, test_dir};

/// Runs every query of docs/sql in `dir` (where the two files are) and
/// prints {file: rows as objects}.
const RUNNER: &str = r#"
import duckdb, json, sys, os
sql, out = sys.argv[1], {}
os.chdir(sys.argv[2])
con = duckdb.connect()
con.execute("CREATE VIEW hosts AS " + open(os.path.join(sql, "hosts.sql")).read())
for name in ["headline", "distributions", "outcomes_by_vantage", "hosts_with_finding"]:
    cur = con.execute(open(os.path.join(sql, name + ".sql")).read())
    cols = [c[0] for c in cur.description]
    out[name] = [dict(zip(cols, row)) for row in cur.fetchall()]
print(json.dumps(out, default=str))
"#;

fn mxscope(args: &[&str], data: &Path) -> String {
    let out = Command::new(bin("mxscope"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn duckdb_on_the_parquet_export_gives_the_report_s_numbers() {
    lab::postfix();
    lab::fakes();
    let dir = test_dir("parquet");
    let list = dir.join("lab.txt");
    let mut domains: Vec<String> = [
        domains::SINGLE,
        domains::MULTI,
        domains::SHARED_A,
        domains::SHARED_B,
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
        MX_WEAK,
        MX_DH1024,
        MX_AEAD,
        MX_EXPIRED,
        MX_SELFSIGNED,
        MX_NOSTARTTLS,
        MX_REFUSE,
        MX_CLOSED,
        MX_TLS454,
        MX_WEAKTLS,
    ] {
        domains.push(domains::for_host(&host));
    }
    std::fs::write(&list, domains.join("\n")).unwrap();
    let data = dir.join("data");
    let out = Command::new(bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args(["--allow-private", "--ehlo-name", "probe.mxscope.lab.test"])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .args([
            "--tls-depth",
            "classes",
            "--ip-gap",
            "50ms",
            "--timeout-session",
            "10s",
        ])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let files = dir.join("parquet");
    mxscope(
        &[
            "export",
            "s1",
            "--format",
            "parquet",
            "--out",
            files.to_str().unwrap(),
        ],
        &data,
    );
    assert!(files.join("domains.parquet").exists() && files.join("targets.parquet").exists());
    assert!(!files.join("domains.parquet.tmp").exists());
    let report: serde_json::Value =
        serde_json::from_str(&mxscope(&["report", "s1", "--format", "json"], &data)).unwrap();
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sql");
    let ran = Command::new("python3")
        .args(["-c", RUNNER])
        .arg(&sql)
        .arg(&files)
        .output()
        .expect("python3 with duckdb (tests/lab/install.sh)");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let duck: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();

    // The headline, number by number.
    let vantage = &report["vantages"][0];
    let ours = &duck["headline"][0];
    assert_eq!(ours["vantage"], vantage["vantage"]);
    let headline = vantage["headline"].as_object().unwrap();
    for (key, want) in headline {
        if key == "vantage" {
            continue;
        }
        assert_eq!(
            &ours[key], want,
            "headline {key}: duckdb {ours} / report {want}"
        );
    }
    assert!(headline["mx_connection_error"].as_u64().unwrap() > 0);
    assert!(headline["mx_no_starttls"].as_u64().unwrap() > 0);

    // The three distributions, row by row.
    for name in ["key", "verification", "highest_protocol"] {
        let want: BTreeMap<String, u64> = vantage["distributions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no distribution {name}"))["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["count"].as_u64() != Some(0))
            .map(|r| {
                (
                    r["value"].as_str().unwrap().to_string(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect();
        let got: BTreeMap<String, u64> = duck["distributions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["distribution"] == name)
            .map(|r| {
                (
                    r["value"].as_str().unwrap().to_string(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "distribution {name}");
    }

    // Outcomes per vantage and the hosts with a finding, against the
    // records themselves.
    let jsonl = mxscope(&["export", "s1", "--format", "jsonl"], &data);
    let targets: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "target")
        .collect();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for t in &targets {
        *outcomes
            .entry(t["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let local = vantage["vantage"].as_str().unwrap();
    let pivot: BTreeMap<String, u64> = duck["outcomes_by_vantage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_string(),
                r[local].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pivot, outcomes, "outcomes per vantage");
    let mut with_finding: Vec<String> = targets
        .iter()
        .filter(|t| {
            t["findings"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["id"] == "no_forward_secrecy"))
        })
        .map(|t| t["ip"].as_str().unwrap().to_string())
        .collect();
    with_finding.sort();
    let mut got: Vec<String> = duck["hosts_with_finding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ip"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert!(!got.is_empty());
    assert_eq!(got, with_finding, "hosts with no_forward_secrecy");
    // The report's rows (one per MX host, at its best address) are among
    // them: every address the report names has the finding in the file.
    let reported: Vec<String> = vantage["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["finding"] == "no_forward_secrecy")
        .map(|r| r["ip"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(!reported.is_empty());
    for ip in &reported {
        assert!(got.contains(ip), "{ip} of the report's rows: {got:?}");
    }

    // Without --out the export says what it needs, and writes nothing.
    let out = Command::new(bin("mxscope"))
        .args(["export", "s1", "--format", "parquet", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out DIR"));
}
