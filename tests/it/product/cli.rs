//! `mxscope-worker probe` as a user runs it, against the lab.

use std::io::Write;
use std::process::{Command, Stdio};

use mxscope_common::{DomainRecord, Outcome};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::probing::worker_bin;

fn probe_command() -> Command {
    lab::postfix();
    let mut cmd = Command::new(worker_bin());
    cmd.arg("probe")
        .arg("--resolver")
        .arg(lab::dns().addr().to_string())
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .args([
            "--ehlo-name",
            "probe.mxscope.lab.test",
            "--timeout-session",
            "10s",
        ])
        .arg("--allow-private");
    cmd
}

#[test]
fn json_lines_for_domains_from_arguments_and_stdin() {
    let mut child = probe_command()
        .args(["--json", domains::SINGLE, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("# lab\n{}\n\n{}\n", domains::NULLMX, domains::IDN_UNICODE).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let records: Vec<DomainRecord> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<_> = records.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(
        names,
        [domains::SINGLE, domains::NULLMX, domains::IDN_ASCII]
    );
    assert_eq!(records[0].schema_version, mxscope_common::SCHEMA_VERSION);
    assert_eq!(records[0].targets[0].outcome, Outcome::StarttlsOk);
    assert!(records[1].dns.null_mx);
    assert_eq!(
        records[2].domain_unicode.as_deref(),
        Some(domains::IDN_UNICODE)
    );
    assert_eq!(records[2].targets[0].ip, MX_VALID.ip);
}

#[test]
fn readable_summary() {
    let out = probe_command()
        .arg(domains::for_host(&MX_EXPIRED))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("expired.lab.test: dns ok, 1 MX"), "{text}");
    assert!(text.contains("127.0.1.13 starttls_ok"), "{text}");
    assert!(text.contains("certificate expired, name matches"), "{text}");
}

#[test]
fn invalid_list_line_is_rejected_with_its_number() {
    let dir = lab::dir().join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("bad.txt");
    std::fs::write(&list, "single.lab.test\nnot a domain\n").unwrap();
    let out = probe_command().arg("-f").arg(&list).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing probed");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 2: contains whitespace"), "{err}");
}

#[test]
fn private_addresses_are_skipped_unless_allowed() {
    lab::postfix();
    let out = Command::new(worker_bin())
        .args(["probe", "--json", "--resolver"])
        .arg(lab::dns().addr().to_string())
        .arg(domains::SINGLE)
        .output()
        .unwrap();
    assert!(out.status.success());
    let record: DomainRecord = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record.targets[0].outcome, Outcome::Skipped);
    assert!(record.targets[0]
        .detail
        .as_ref()
        .unwrap()
        .contains("--allow-private"));
}

/// `--ehlo-name` is parsed as an RFC 5321 name wherever it enters: a CR/LF
/// smuggling a second command is refused before anything is resolved,
/// contacted or stored, by both CLIs.
#[test]
fn ehlo_name_cannot_smuggle_a_command() {
    let smuggled = "scanner.example\r\nMAIL FROM:<x@example.org>";
    let out = Command::new(worker_bin())
        .args(["probe", "--allow-private", "--resolver"])
        .arg(lab::dns().addr().to_string())
        .args(["--ehlo-name", smuggled, domains::SINGLE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "refused as a usage error");
    assert!(out.stdout.is_empty(), "nothing probed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("carriage return"), "{err}");

    let data_dir = lab::dir().join("cli-ehlo-scan");
    let list = lab::dir().join("cli-ehlo.txt");
    std::fs::write(&list, format!("{}\n", domains::SINGLE)).unwrap();
    let out = Command::new(mxscope_tests::runs::cluster::bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--ehlo-name", "bad name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a space"), "{err}");
    assert!(!data_dir.exists(), "nothing stored");
}

/// Log lines carry colour only on a terminal: piped (a file, journald) they
/// are plain; on a pseudo-terminal (`script`, util-linux) they are coloured
/// unless `NO_COLOR` is set or the format is JSON.
#[test]
fn logs_are_coloured_only_on_a_terminal() {
    const ESC: &str = "\u{1b}[";
    let mut cmd = probe_command();
    cmd.env("MXSCOPE_LOG", "mxscope_worker=debug")
        .args(["--legacy", domains::SINGLE]);
    let out = cmd.output().expect("probe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "some log lines: {stderr}");
    assert!(!stderr.contains(ESC), "no colour in a pipe: {stderr}");

    // The same command on a terminal.
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
        .collect();
    let on_terminal = |env: &[(&str, &str)]| -> String {
        let mut script = Command::new("script");
        script
            .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
            .env("MXSCOPE_LOG", "mxscope_worker=debug")
            .env_remove("NO_COLOR");
        for (k, v) in env {
            script.env(k, v);
        }
        let out = script.output().expect("script (util-linux) runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The level's colour comes right before it ("\x1b[34mDEBUG"); the
    // progress line on a terminal has escapes of its own, so look there.
    let coloured = on_terminal(&[]);
    assert!(
        coloured.contains(&format!("{ESC}34mDEBUG")),
        "colour on a terminal: {coloured}"
    );
    let plain = on_terminal(&[("NO_COLOR", "1")]);
    assert!(
        plain.contains(" DEBUG ") && !plain.contains("mDEBUG"),
        "NO_COLOR: {plain}"
    );
}

/// Issue 19 item 4: an option that several commands take has one default
/// everywhere (`mxscope scan`, `submit`, `serve`, `mxscope-worker probe`,
/// `work`), read from their `--help` as a user would.
#[test]
fn an_option_has_one_default_in_every_command() {
    use std::collections::BTreeMap;
    let commands: [(&str, &[&str]); 5] = [
        ("mxscope", &["scan"]),
        ("mxscope", &["submit"]),
        ("mxscope", &["serve"]),
        ("mxscope-worker", &["probe"]),
        ("mxscope-worker", &["work"]),
    ];
    // Different options that share a name: scan's is the embedded worker's
    // vantage, submit's the vantages to scan from, work's this worker's.
    let apart = ["--vantage"];
    let mut defaults: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (program, args) in commands {
        let out = Command::new(mxscope_tests::runs::cluster::bin(program))
            .args(args)
            .arg("--help")
            .output()
            .expect("--help runs");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let command = format!("{program} {}", args.join(" "));
        // An option line, then its description lines up to the next option.
        let mut current: Option<String> = None;
        for line in help.lines() {
            let trimmed = line.trim_start();
            if let Some(option) = trimmed
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .filter(|_| trimmed.starts_with('-'))
            {
                current = Some(option.to_string());
                defaults
                    .entry(option.to_string())
                    .or_default()
                    .entry(command.clone())
                    .or_insert_with(|| "(none)".to_string());
            }
            if let (Some(option), Some(at)) = (&current, line.find("[default: ")) {
                let value = line[at + 10..].split(']').next().unwrap_or_default();
                defaults
                    .entry(option.clone())
                    .or_default()
                    .insert(command.clone(), value.to_string());
            }
        }
    }
    assert!(defaults.contains_key("--concurrency") && defaults.contains_key("--timeout-connect"));
    let mut differing = Vec::new();
    for (option, by_command) in &defaults {
        let values: std::collections::BTreeSet<&String> = by_command.values().collect();
        if values.len() > 1 && !apart.contains(&option.as_str()) {
            differing.push(format!("{option}: {by_command:?}"));
        }
    }
    assert!(
        differing.is_empty(),
        "one default per option:\n{}",
        differing.join("\n")
    );
}
