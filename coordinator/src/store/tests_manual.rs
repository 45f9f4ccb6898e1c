//! Tests run by hand: a real SIGKILL mid-ingest, and the measurements.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

use super::tests::{meta, open, resolve_task, target};
use super::Store;

/// Environment variable that turns [`kill9_child`] into a writer.
const CHILD_DIR: &str = "MXSCOPE_STORE_KILL9_DIR";

/// The writer half of [`kill9_keeps_acknowledged_records`]: writes target
/// batches, flushes, and prints `acked N` after every flush.
#[tokio::test]
#[ignore = "child process of kill9_keeps_acknowledged_records"]
async fn kill9_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = Store::open(Path::new(&dir)).unwrap();
    let mut acked = 0u32;
    loop {
        let batch: Vec<_> = (acked..acked + 100)
            .map(|i| target(IpAddr::V4(Ipv4Addr::from(i))))
            .collect();
        store.put_target_records("s1", "A", &batch).unwrap();
        store.flush().await.unwrap();
        acked += 100;
        println!("acked {acked}");
    }
}

/// Crash recovery with a real SIGKILL: every acknowledged record survives
/// and the counter equals the stored keys. Run by hand:
/// `cargo test -p mxscope-coordinator store::tests_manual::kill9 -- --ignored`
#[test]
#[ignore = "spawns a child process and kills it"]
fn kill9_keeps_acknowledged_records() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::tests_manual::kill9_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            if acked >= 5_000 {
                break;
            }
        }
    }
    assert!(acked >= 5_000, "the child stopped early");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let count = store.count_target_records("s1").unwrap();
    assert!(count >= acked, "{count} stored < {acked} acknowledged");
    assert_eq!(store.target_records("s1").count() as u64, count);
}

/// Measurement, run by hand:
/// `cargo test --release -p mxscope-coordinator store::tests_manual::measure -- --ignored --nocapture`
#[tokio::test]
#[ignore = "measurement, run by hand"]
async fn measure() {
    let (_dir, store) = open();
    let per_task = 500;
    let mut tasks = Vec::new();
    for shard in 0..2_000 {
        let domains: Vec<String> = (0..per_task)
            .map(|i| format!("domain-{:07}.example.it", shard * per_task + i))
            .collect();
        for vantage in ["A", "B"] {
            tasks.push(resolve_task("s1", vantage, shard, domains.clone()));
        }
    }
    let start = Instant::now();
    store.create_scan(&meta("s1"), &tasks).unwrap();
    let created = start.elapsed();
    let size = store.size_on_disk().unwrap();
    println!(
        "create_scan: 1,000,000 domains, {} tasks: {created:?}, size_on_disk {:.1} MiB",
        tasks.len(),
        size as f64 / 1048576.0
    );
    let start = Instant::now();
    let loaded = store.tasks().count();
    println!("load {loaded} tasks: {:?}", start.elapsed());

    let n: u32 = 20_000;
    let start = Instant::now();
    for i in 0..n {
        let mut record = target(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
        record.ehlo = vec![
            "PIPELINING".into(),
            "SIZE 10240000".into(),
            "STARTTLS".into(),
        ];
        record.detail = Some("x".repeat(200));
        assert!(store.put_target_record("s1", "A", &record).unwrap());
        if i % 500 == 499 {
            store.flush().await.unwrap();
        }
    }
    let elapsed = start.elapsed();
    println!(
        "put_target_record: {n} records, flush every 500: {elapsed:?} ({:.0}/s)",
        f64::from(n) / elapsed.as_secs_f64()
    );
    let records: Vec<_> = (0..n)
        .map(|i| target(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i))))
        .collect();
    let start = Instant::now();
    for chunk in records.chunks(500) {
        store.put_target_records("s1", "B", chunk).unwrap();
        store.flush().await.unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "put_target_records: {n} records in batches of 500, flush each: {elapsed:?} ({:.0}/s)",
        f64::from(n) / elapsed.as_secs_f64()
    );
    println!(
        "size_on_disk after: {:.1} MiB",
        store.size_on_disk().unwrap() as f64 / 1048576.0
    );
}

/// What sled does when the disk fills and frees again, in one process
/// (run by hand as root: it mounts a 4 MiB tmpfs).
#[tokio::test]
#[ignore = "by hand: mounts a tmpfs"]
async fn disk_full_then_freed_in_process() {
    let dir = std::path::PathBuf::from("/tmp/mxscope-full-test");
    let _ = std::process::Command::new("umount").arg(&dir).status();
    std::fs::create_dir_all(&dir).unwrap();
    assert!(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    let store = Store::open(&dir.join("data")).unwrap();
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0u8; 2 << 20]).unwrap();
    let mut n = 0u32;
    let mut failed_at = None;
    for round in 0..2000u32 {
        let batch: Vec<_> = (n..n + 50)
            .map(|i| target(IpAddr::V4(Ipv4Addr::from(i))))
            .collect();
        let put = store.put_target_records("s1", "A", &batch);
        let flushed = match put {
            Ok(_) => store.flush().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match flushed {
            Ok(()) => n += 50,
            Err(e) => {
                println!("round {round}: {e} (kind {:?})", e.kind());
                failed_at = Some(round);
                break;
            }
        }
    }
    println!("stored {n} before the failure: {failed_at:?}");
    std::fs::remove_file(&filler).unwrap();
    let still = store.put_target_records("s1", "A", &[target(IpAddr::V4(Ipv4Addr::from(n)))]);
    println!("after freeing, before a reopen: {still:?}");
    store.reopen().unwrap();
    for attempt in 0..5 {
        let batch: Vec<_> = (n..n + 50)
            .map(|i| target(IpAddr::V4(Ipv4Addr::from(i))))
            .collect();
        let put = store.put_target_records("s1", "A", &batch);
        let flushed = match put {
            Ok(_) => store.flush().await.map(|_| ()),
            Err(e) => Err(e),
        };
        println!("after freeing, attempt {attempt}: {flushed:?}");
        if flushed.is_ok() {
            n += 50;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    println!("count {}", store.count_target_records("s1").unwrap());
    drop(store);
    let _ = std::process::Command::new("umount").arg(&dir).status();
}
