//! `mxscope scan`: the one-command main job, embedded coordinator and worker.

use std::process::Command;

use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::{bin, test_dir};

#[test]
fn scan_prints_the_headline_and_keeps_the_results() {
    lab::postfix();
    lab::exim();
    lab::fakes();
    let dir = test_dir("embedded-scan");
    let list = dir.join("lab.txt");
    let mut domains = vec![
        "# the lab".to_string(),
        domains::SINGLE.into(),
        domains::MULTI.into(),
        domains::SHARED_A.into(),
        domains::SHARED_B.into(),
        domains::NULLMX.into(),
        domains::IMPLICIT.into(),
        domains::NXDOMAIN.into(),
        domains::NODATA.into(),
        domains::MX_NOADDR.into(),
        domains::V6.into(),
    ];
    for host in [
        MX_EXPIRED,
        MX_SELFSIGNED,
        MX_NOSTARTTLS,
        MX_REFUSE,
        MX_TLS454,
        MX_CLOSED,
        MX_EXIM,
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
        .args([
            "--allow-private",
            "--ehlo-name",
            "probe.mxscope.lab.test",
            "--timeout-session",
            "10s",
        ])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 17 domains: 2 DNS errors, 1 null MX, 1 implicit MX, 13 with MX.
    // 13 unique MX: valid, backup, ecdsa, implicit, v6, expired, selfsigned,
    // tls454, exim (STARTTLS: 9); nostarttls (1); none, refuse, closed (3).
    assert!(
        text.contains(
            "On a total of 17 domain names, 13 unique MX records have been found; 9 of them \
             support STARTTLS, covering 10 unique domains (3 MXes reported a connection error \
             while 1 declared to not support STARTTLS)."
        ),
        "{text}"
    );
    assert!(
        text.contains("13 with MX, 1 implicit MX, 1 null MX, 2 DNS errors"),
        "{text}"
    );
    // The results stay in the data directory, readable offline, and the
    // readers leave it byte-identical (the scan settled it as it stopped).
    let before = snapshot(&data);
    let status = Command::new(bin("mxscope"))
        .args(["status", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["state"], "done");
    assert_eq!(status["domain_records"], 17);
    for reader in [
        &["status", "s1"][..],
        &["report", "s1"],
        &["report", "s1", "--format", "json"],
        &["export", "s1", "--format", "jsonl"],
        &["export", "s1", "--format", "findings"],
        &["compare", "s1", "s1"],
        &["vantages", "s1"],
    ] {
        let out = Command::new(bin("mxscope"))
            .args(reader)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{reader:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            before == snapshot(&data),
            "mxscope {reader:?} changed the data directory"
        );
    }
}

/// Every file under `dir` with its bytes, sorted.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The list is streamed to the embedded coordinator a chunk at a time; a
/// bad line past the first chunk still refuses the whole list, with its
/// number, and leaves neither a scan nor staged lines (nothing is probed:
/// the refusal comes before the worker starts).
#[test]
fn a_bad_line_past_the_first_chunk_refuses_the_whole_scan() {
    const LINES: usize = 25_000;
    const BAD_LINE: usize = 23_457;
    let dir = test_dir("embedded-scan-bad-line");
    let list = dir.join("list.txt");
    let text: String = (1..=LINES)
        .map(|n| {
            if n == BAD_LINE {
                "not a domain\n".to_string()
            } else {
                format!("d{n}.example\n")
            }
        })
        .collect();
    std::fs::write(&list, text).unwrap();
    let data = dir.join("data");
    let out = Command::new(bin("mxscope"))
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args(["--resolver", &lab::dns().addr().to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    assert!(
        err.contains(&format!("line {BAD_LINE}: contains whitespace")),
        "{err}"
    );
    let staged = std::fs::read_dir(data.join("staging"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(staged, 0, "no staged lines left");
    let status = Command::new(bin("mxscope"))
        .args(["status", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success());
    assert!(shown.trim().is_empty(), "no scan stored: {shown}");
}

/// `mxscope scan` killed (SIGKILL) mid-run, then `mxscope scan --resume`:
/// the same headline and record counts as an uninterrupted scan of the
/// same list, nothing counted twice.
#[test]
fn a_killed_scan_is_resumed_to_the_same_result() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    lab::postfix();
    lab::fakes();
    let dir = test_dir("resume-scan");
    let list = dir.join("lab.txt");
    let domains = [
        domains::SINGLE.to_string(),
        domains::MULTI.into(),
        domains::SHARED_A.into(),
        domains::NULLMX.into(),
        domains::NXDOMAIN.into(),
        // Silent after connect: its probe holds the scan for the greeting
        // timeout, so the kill comes mid-run.
        domains::for_host(&MX_SILENT),
    ];
    std::fs::write(&list, domains.join("\n")).unwrap();
    let status = |data: &std::path::Path| -> serde_json::Value {
        let out = Command::new(bin("mxscope"))
            .args(["status", "s1", "--json", "--data-dir"])
            .arg(data)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // The oracle: the same list, not interrupted.
    let whole = dir.join("whole");
    let out = lab_scan(&whole).arg(&list).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = headline(&String::from_utf8_lossy(&out.stdout));
    assert!(!expected.is_empty());

    // Killed (SIGKILL) once the scan is submitted and probing.
    let kill_mid_run = |data: &std::path::Path| {
        let mut child = lab_scan(data)
            .arg(&list)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let submitted = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("scan s1:"));
        assert!(submitted, "the scan was submitted");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(status(data)["state"], "running", "killed mid-run");
    };
    let data = dir.join("data");
    kill_mid_run(&data);

    let out = lab_scan(&data).args(["--resume"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("scan s1: resuming"), "{stderr}");
    assert_eq!(headline(&String::from_utf8_lossy(&out.stdout)), expected);
    let (resumed, oracle) = (status(&data), status(&whole));
    assert_eq!(resumed["state"], "done");
    for count in ["domain_records", "target_records"] {
        assert_eq!(resumed[count], oracle[count], "{count}");
    }
    // Nothing left to resume; a list and --resume together are refused.
    let out = lab_scan(&data).args(["--resume"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scan to resume"));
    let out = lab_scan(&data).arg(&list).arg("--resume").output().unwrap();
    assert!(!out.status.success());

    // Killed again, then cancelled offline instead of resumed: `cancel
    // --data-dir` opens the directory as its writer and ends the scan.
    let again = dir.join("again");
    kill_mid_run(&again);
    let out = Command::new(bin("mxscope"))
        .args(["cancel", "s1", "--data-dir"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&again)["state"], "cancelled");
    let out = lab_scan(&again).args(["--resume"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scan to resume"));
}

/// `--data-dir` on a small filesystem (a tmpfs the test mounts) that fills
/// up mid-scan: `mxscope scan` says what is full, how much is free and how
/// to resume, and exits non-zero after `--full-disk-wait`; once space is
/// freed, `--resume` finishes the scan with the uninterrupted headline.
#[test]
fn a_full_disk_stops_the_scan_with_a_message_and_resume_finishes_it() {
    use std::process::Stdio;
    lab::postfix();
    lab::fakes();
    let dir = test_dir("full-disk");
    let list = held_list(&dir);
    let scan = |data: &std::path::Path| {
        let mut cmd = lab_scan(data);
        cmd.args(["--full-disk-wait", "2s"]);
        cmd
    };
    let expected = uninterrupted_headline(&dir, &list);

    let small = small_filesystem(&dir);
    let data = small.join("data");
    let (mut child, lines) = started(scan(&data).arg(&list).stdout(Stdio::null()));
    let filler = fill(&small);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let stderr = rest.join("\n");
    assert!(!status.success(), "a full disk ends the scan: {stderr}");
    assert!(
        stderr.contains("cannot write the data directory")
            && stderr.contains("MiB free")
            && stderr.contains(&format!(
                "mxscope scan --resume s1 --data-dir {}",
                data.display()
            )),
        "{stderr}"
    );
    let warnings = stderr.matches("cannot write the data directory").count();
    assert!(warnings <= 3, "said once, not in a loop: {stderr}");

    std::fs::remove_file(&filler).unwrap();
    let out = scan(&data).arg("--resume").output().unwrap();
    let resumed = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = Command::new("umount").arg(&small).status();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(headline(&resumed), expected);
}

/// The same, with space freed before `--full-disk-wait` ends: the store is
/// tried again, the coordinator reloads from it, the worker resends what
/// was not acknowledged, and the same process finishes with the
/// uninterrupted headline.
#[test]
fn a_full_disk_freed_in_time_lets_the_scan_finish_by_itself() {
    use std::io::Read;
    use std::process::Stdio;
    lab::postfix();
    lab::fakes();
    let dir = test_dir("full-disk-freed");
    let list = held_list(&dir);
    let expected = uninterrupted_headline(&dir, &list);

    let small = small_filesystem(&dir);
    let data = small.join("data");
    let mut scan = lab_scan(&data);
    scan.args(["--full-disk-wait", "5m"])
        .arg(&list)
        .stdout(Stdio::piped());
    let (mut child, mut lines) = started(&mut scan);
    let filler = fill(&small);
    let said: Vec<String> = lines
        .by_ref()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("cannot write the data directory"))
        .collect();
    std::fs::remove_file(&filler).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let _ = Command::new("umount").arg(&small).status();
    let stderr = format!("{}\n{}", said.join("\n"), rest.join("\n"));
    assert!(
        status.success(),
        "the scan goes on once space is back: {stderr}"
    );
    assert!(
        rest.iter().any(|l| l.contains("is writable again")),
        "the recovery is said: {stderr}"
    );
    assert_eq!(headline(&stdout), expected, "{stderr}");
}

/// `--timeout-dns` reaches the scan's worker: a name server that never
/// answers (a socket the test binds and never reads) costs two attempts of
/// 300 ms, not two of the default 5 s; the domain is a DNS timeout.
#[test]
fn the_dns_timeout_of_a_scan_reaches_its_worker() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = silent.local_addr().unwrap().to_string();
    let dir = test_dir("timeout-dns");
    let list = dir.join("list.txt");
    std::fs::write(&list, "example.test\n").unwrap();
    let data = dir.join("data");
    let list = list.display().to_string();
    let started = std::time::Instant::now();
    mxscope_tests::runs::scanning::mxscope(
        &[
            "scan",
            &list,
            "--resolver",
            &resolver,
            "--timeout-dns",
            "300ms",
        ],
        &data,
    );
    let elapsed = started.elapsed();
    let export = mxscope_tests::runs::scanning::mxscope(&["export", "s1"], &data);
    drop(silent);
    assert!(export.contains(r#""status":"timeout""#), "{export}");
    assert!(
        elapsed < std::time::Duration::from_secs(8),
        "took {elapsed:?}"
    );
}

/// Start `scan` with its standard error piped and wait until it says it
/// has begun (`scan s1: …`); the child and the rest of its standard error.
fn started(
    scan: &mut Command,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    use std::io::BufRead;
    let mut child = scan.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("scan s1:")));
    (child, lines)
}

/// A lab list whose silent host holds a scan for the greeting timeout.
fn held_list(dir: &std::path::Path) -> std::path::PathBuf {
    let list = dir.join("lab.txt");
    let domains = [
        domains::SINGLE.to_string(),
        domains::MULTI.into(),
        domains::NULLMX.into(),
        domains::NXDOMAIN.into(),
        domains::for_host(&MX_SILENT),
    ];
    std::fs::write(&list, domains.join("\n")).unwrap();
    list
}

/// The headline of a scan of `list` left alone (in `dir/whole`).
fn uninterrupted_headline(dir: &std::path::Path, list: &std::path::Path) -> String {
    let out = lab_scan(&dir.join("whole")).arg(list).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    headline(&String::from_utf8_lossy(&out.stdout))
}

/// A 16 MiB tmpfs mounted at `dir/small` (the suite runs as root).
fn small_filesystem(dir: &std::path::Path) -> std::path::PathBuf {
    let small = dir.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let _ = Command::new("umount").arg(&small).status();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a tmpfs (the suite runs as root)"
    );
    small
}

/// Fill what is left of the filesystem at `dir`; the filler's path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    filler
}

/// `mxscope scan` on the lab with `data` as its directory, fast timeouts and
/// one attempt per target; add the list (or `--resume`) and run it.
fn lab_scan(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin("mxscope"));
    cmd.arg("scan")
        .arg("--data-dir")
        .arg(data)
        .args([
            "--allow-private",
            "--ehlo-name",
            "probe.mxscope.lab.test",
            "--timeout-greeting",
            "4s",
            "--retry-attempts",
            "1",
        ])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem);
    cmd
}

/// The headline sentence in a scan's output ("" when there is none).
fn headline(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("On a total of"))
        .unwrap_or_default()
        .to_string()
}
