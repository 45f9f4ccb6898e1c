//! `mxscope submit` streams its list (issue 11): a real `mxscope serve` and
//! the `mxscope submit` binary, with lists longer than one chunk of the
//! submission (10,000 lines). A bad line past the first chunk still refuses
//! the whole list, naming its line, and leaves nothing behind; a good list
//! arrives whole, from a file or from standard input.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use mxscope_tests::runs::cluster::*;

/// Lines of the lists: more than two chunks.
const LINES: usize = 25_000;
/// The bad line (1-based), in the third chunk.
const BAD_LINE: usize = 23_457;

/// A list of `LINES` distinct domains, with `bad` at line `BAD_LINE`.
fn list(bad: &str) -> String {
    list_of(LINES, bad)
}

/// A list of `lines` distinct domains, with `bad` at line `BAD_LINE`.
fn list_of(lines: usize, bad: &str) -> String {
    (1..=lines)
        .map(|i| match i {
            BAD_LINE => format!("{bad}\n"),
            _ => format!("d{i}.submit.example\n"),
        })
        .collect()
}

fn submit(coordinator: &CoordinatorProcess, list: &Path, stdin: Option<&str>) -> Output {
    let mut child = spawn_submit(coordinator, list, stdin.is_some());
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Written from a thread: the child reads while it submits.
        let text = text.to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    child.wait_with_output().expect("mxscope submit ends")
}

/// `mxscope submit LIST`, its output piped (and its input, when `stdin`).
fn spawn_submit(coordinator: &CoordinatorProcess, list: &Path, stdin: bool) -> Child {
    coordinator
        .submit_command(list)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mxscope submit")
}

/// A child's standard input, written from a thread and held open.
struct HeldInput {
    close: std::sync::mpsc::Sender<()>,
    writer: std::thread::JoinHandle<()>,
}

impl HeldInput {
    fn close(self) {
        let _ = self.close.send(());
        self.writer.join().expect("writer");
    }
}

/// Write `text` to `child`'s standard input and keep it open until
/// [`HeldInput::close`].
fn write_and_hold(child: &mut Child, text: String) -> HeldInput {
    let mut pipe = child.stdin.take().expect("stdin");
    let (close, closed) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(text.as_bytes());
        let _ = closed.recv();
        drop(pipe);
    });
    HeldInput { close, writer }
}

/// Whether `done` comes true within a minute (checked every 20 ms).
fn within_a_minute(mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > Duration::from_secs(60) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Entries of the coordinator's staging folder (submissions in progress).
fn staged(coordinator: &CoordinatorProcess) -> Vec<String> {
    match std::fs::read_dir(coordinator.data_dir.join("staging")) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_bad_line_past_the_first_chunk_refuses_the_streamed_list() {
    let dir = test_dir("submit-stream-bad");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "30s").unwrap();
    let path = dir.join("list.txt");
    std::fs::write(&path, list("bad domain.example")).unwrap();

    let out = submit(&coordinator, &path, None);
    assert!(!out.status.success(), "a list with a bad line is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("line {BAD_LINE}: contains whitespace")),
        "{err}"
    );
    assert!(
        coordinator.admin().await.list().await.unwrap().is_empty(),
        "no scan exists"
    );
    assert_eq!(staged(&coordinator), Vec::<String>::new(), "nothing staged");
}

#[tokio::test]
async fn a_long_list_arrives_whole_from_a_file_and_from_stdin() {
    let dir = test_dir("submit-stream-good");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "30s").unwrap();
    let text = list("# a comment where the bad line was");
    let path = dir.join("list.txt");
    std::fs::write(&path, &text).unwrap();

    for (list, stdin) in [
        (path.as_path(), None),
        (Path::new("-"), Some(text.as_str())),
    ] {
        let out = submit(&coordinator, list, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("{} domains", LINES - 1)),
            "{stdout}"
        );
    }

    let scans = coordinator.admin().await.list().await.unwrap();
    assert_eq!(scans.len(), 2);
    for scan in &scans {
        assert_eq!(scan.meta.domains, (LINES - 1) as u64, "{scan:?}");
    }
    assert_eq!(
        staged(&coordinator),
        Vec::<String>::new(),
        "nothing left staged"
    );
}

/// The list is streamed, not read whole first: a refusal arrives while
/// standard input is still open (a client that read to the end first would
/// still be waiting for it). The lines after the bad one fill its chunk
/// (chunks are sent full, or at the end of the list).
#[tokio::test]
async fn the_refusal_comes_while_the_list_is_still_being_written() {
    let dir = test_dir("submit-stream-open");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "30s").unwrap();
    let mut child = spawn_submit(&coordinator, Path::new("-"), true);
    let input = write_and_hold(&mut child, list_of(LINES + 10_000, "bad domain.example"));

    let mut status = None;
    within_a_minute(|| {
        status = child.try_wait().expect("child status");
        status.is_some()
    });
    input.close();
    let Some(status) = status else {
        let _ = child.kill();
        panic!("mxscope submit waited for the end of its input before submitting");
    };
    let out = child.wait_with_output().expect("output");
    assert!(!status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("line {BAD_LINE}: contains whitespace")),
        "{err}"
    );
    assert!(coordinator.admin().await.list().await.unwrap().is_empty());
    assert_eq!(staged(&coordinator), Vec::<String>::new());
}

/// A submission cut off mid-list (the client killed while it streams)
/// leaves nothing: the coordinator drops what it staged, and no scan exists.
#[tokio::test]
async fn an_interrupted_submission_leaves_nothing_behind() {
    let dir = test_dir("submit-stream-killed");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "30s").unwrap();
    let mut child = spawn_submit(&coordinator, Path::new("-"), true);
    // More than a chunk, so that the submission is under way; then the
    // list stays open, unfinished.
    let input = write_and_hold(&mut child, list_of(LINES - 10_000, "also-good.example"));

    let under_way = within_a_minute(|| !staged(&coordinator).is_empty());
    let _ = child.kill();
    let _ = child.wait();
    input.close();
    assert!(under_way, "the coordinator staged the first chunk");
    assert!(
        within_a_minute(|| staged(&coordinator).is_empty()),
        "the coordinator drops the unfinished submission: {:?}",
        staged(&coordinator)
    );
    assert!(
        coordinator.admin().await.list().await.unwrap().is_empty(),
        "no scan exists"
    );
}
