//! The Debian package (`deploy/debian/build-deb.sh`), built from this
//! build's binaries, installed on this machine with `dpkg -i`, used for a
//! lab scan, then purged. Needs root and dpkg (a Debian machine).

use std::path::Path;
use std::process::Command;

use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::test_dir;

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_package_installs_scans_and_goes() {
    lab::postfix();
    let dir = test_dir("debian-package");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("deploy/debian/build-deb.sh");
    let deb = ok(
        "bash",
        &[script.to_str().unwrap(), "debug", dir.to_str().unwrap()],
    );
    let deb = deb.trim();
    let info = ok("dpkg-deb", &["--info", deb]);
    assert!(info.contains("Package: mxscope") && info.contains("Depends: libc6, adduser"));
    let _ = run("dpkg", &["--purge", "mxscope"]); // a leftover of an earlier run

    ok("dpkg", &["-i", deb]);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        ok("/usr/bin/mxscope", &["--version"]).trim(),
        format!("mxscope {version}")
    );
    assert_eq!(
        ok("/usr/bin/mxscope-worker", &["--version"]).trim(),
        format!("mxscope-worker {version}")
    );
    assert!(ok("getent", &["passwd", "mxscope"]).contains("/var/lib/mxscope"));
    let unit = std::fs::read_to_string("/lib/systemd/system/mxscope-coordinator.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/mxscope serve --config /etc/mxscope/mxscope.toml"));
    assert!(
        !Path::new("/etc/systemd/system/multi-user.target.wants/mxscope-coordinator.service")
            .exists(),
        "nothing is enabled on install"
    );
    for file in [
        "/usr/share/man/man1/mxscope.1.gz",
        "/usr/share/man/man1/mxscope-scan.1.gz",
        "/usr/share/man/man1/mxscope-worker-work.1.gz",
        "/usr/share/bash-completion/completions/mxscope",
        "/usr/share/zsh/vendor-completions/_mxscope-worker",
        "/usr/share/fish/vendor_completions.d/mxscope.fish",
        "/etc/mxscope/mxscope.toml",
        "/etc/mxscope/worker.toml",
    ] {
        assert!(Path::new(file).exists(), "{file} installed");
    }
    let bash = ok("/usr/bin/mxscope", &["completions", "bash"]);
    assert!(bash.contains("_mxscope()") && bash.contains("--resume"));

    // The installed binary runs the main job on the lab.
    let list = dir.join("lab.txt");
    std::fs::write(&list, format!("{}\n{}\n", domains::SINGLE, domains::NULLMX)).unwrap();
    let data = dir.join("data");
    let out = Command::new("/usr/bin/mxscope")
        .arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(&data)
        .args(["--allow-private", "--ehlo-name", "probe.mxscope.lab.test"])
        .args(["--resolver", &lab::dns().addr().to_string()])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("On a total of 2 domain names, 1 unique MX records have been found; 1 of them support STARTTLS"),
        "{text}"
    );

    ok("dpkg", &["--purge", "mxscope"]);
    assert!(!Path::new("/usr/bin/mxscope").exists());
    assert!(!Path::new("/usr/bin/mxscope-worker").exists());
    assert!(
        run("getent", &["passwd", "mxscope"]).stdout.is_empty(),
        "purge removes the user"
    );
}
