//! `mxscope scan` of lab domains, read back with `mxscope export`: the
//! records a user's script would see, for tests that assert exact facts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mxscope_common::{DomainRecord, Record, TargetRecord, SCHEMA_VERSION};

use crate::lab;
use crate::runs::cluster::{bin, test_dir};

/// Probe timeouts for lab scans: short, so that odd hosts end quickly.
pub const SHORT_TIMEOUTS: [&str; 10] = [
    "--timeout-connect",
    "3s",
    "--timeout-greeting",
    "3s",
    "--timeout-command",
    "3s",
    "--timeout-handshake",
    "3s",
    "--timeout-session",
    "10s",
];

/// What one `mxscope scan` stored.
#[derive(Debug)]
pub struct Scanned {
    /// The domain records, by domain.
    pub domains: BTreeMap<String, DomainRecord>,
    /// The target records.
    pub targets: Vec<TargetRecord>,
    /// What `mxscope scan` printed (the headline).
    pub headline: String,
}

impl Scanned {
    /// The target probed at `ip`.
    pub fn target(&self, ip: std::net::IpAddr) -> &TargetRecord {
        self.targets
            .iter()
            .find(|t| t.ip == ip)
            .unwrap_or_else(|| panic!("a target for {ip}: {:#?}", self.targets))
    }
}

/// Run `mxscope` with `args` and `data` as `--data-dir`; panics with its
/// output unless it succeeds; returns its standard output.
pub fn mxscope(args: &[&str], data: &Path) -> String {
    let out = Command::new(bin("mxscope"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run mxscope");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mxscope {args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `mxscope scan` of `domains` (lab resolver, lab CA, private addresses
/// allowed, [`SHORT_TIMEOUTS`], then `args`) in a fresh data folder named
/// `name`: (the data folder, what the scan printed). The lab servers the
/// domains need must be started by the caller.
pub fn scan_into(name: &str, domains: &[&str], args: &[&str]) -> (std::path::PathBuf, String) {
    let dir = test_dir(name);
    let list = dir.join("list.txt");
    std::fs::write(&list, domains.join("\n")).expect("write the list");
    let data = dir.join("data");
    let list = list.display().to_string();
    let ca = lab::certs().ca_pem.display().to_string();
    let resolver = lab::dns().addr().to_string();
    let mut scan_args = vec![
        "scan",
        &list,
        "--allow-private",
        "--ehlo-name",
        "probe.mxscope.lab.test",
        "--resolver",
        &resolver,
        "--ca-file",
        &ca,
    ];
    scan_args.extend(SHORT_TIMEOUTS);
    scan_args.extend(args);
    let printed = mxscope(&scan_args, &data);
    (data, printed)
}

/// [`scan_into`], read back with `export`.
pub fn scan(name: &str, domains: &[&str], args: &[&str]) -> Scanned {
    let (data, headline) = scan_into(name, domains, args);
    let export = mxscope(&["export", "s1"], &data);
    let mut records = BTreeMap::new();
    let mut targets = Vec::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        match Record::from_json(line).unwrap_or_else(|e| panic!("{e}: {line}")) {
            Record::Domain(record) => {
                assert_eq!(record.schema_version, SCHEMA_VERSION);
                records.insert(record.domain.clone(), record);
            }
            Record::Target(record) => {
                assert_eq!(record.schema_version, SCHEMA_VERSION);
                targets.push(record);
            }
        }
    }
    assert_eq!(records.len(), domains.len(), "one record per domain");
    Scanned {
        domains: records,
        targets,
        headline,
    }
}
