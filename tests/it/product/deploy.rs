//! `deploy/` checked with real tools, offline: hadolint on the
//! Containerfile, the Compose specification's schema on compose.yaml,
//! `kubectl kustomize` rendering the base and every vantage overlay and
//! kubernetes-validate on the result (all installed by tests/lab/install.sh);
//! the example config files through the binaries; the precedence of flags,
//! `MXSCOPE_*` variables and the config file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mxscope_tests::runs::cluster::{bin, test_dir};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} (installed by tests/lab/install.sh): {e}"))
}

fn ok(program: &str, args: &[&str], dir: &Path) -> String {
    let out = run(program, args, dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn containerfile_lints_clean() {
    let out = ok("hadolint", &["container/Containerfile"], &deploy());
    assert_eq!(out.trim(), "");
    let file = std::fs::read_to_string(deploy().join("container/Containerfile")).unwrap();
    // Multi-stage, a scratch final stage, a non-root user.
    assert!(
        file.contains("AS build") && file.contains("\nFROM scratch\n"),
        "{file}"
    );
    assert!(file.contains("\nUSER 10001:10001\n"), "{file}");
}

#[test]
fn compose_file_follows_the_compose_specification() {
    ok(
        "check-jsonschema",
        &["--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        &deploy(),
    );
    let file = std::fs::read_to_string(deploy().join("compose.yaml")).unwrap();
    for needle in [
        "coordinator:",
        "worker-eu-1:",
        "worker-us-1:",
        "prometheus:",
        "secrets:",
    ] {
        assert!(file.contains(needle), "compose.yaml lacks {needle}");
    }
    assert!(!file.contains("--token="), "a token on a command line");
}

/// Render `dir` with kustomize and validate every object against the
/// Kubernetes schemas (strict: unknown fields are errors).
fn render_and_validate(dir: &str) -> String {
    let kubernetes = deploy().join("kubernetes");
    let rendered = ok("kubectl", &["kustomize", dir], &kubernetes);
    let out_dir = test_dir(&format!("deploy-{}", dir.replace('/', "-")));
    let file = out_dir.join("rendered.yaml");
    std::fs::write(&file, &rendered).unwrap();
    ok(
        "kubernetes-validate",
        &["--strict", "--quiet", file.to_str().unwrap()],
        &out_dir,
    );
    rendered
}

#[test]
fn kubernetes_base_and_overlays_render_and_validate() {
    let base = render_and_validate("base");
    for kind in [
        "kind: StatefulSet",
        "kind: Service",
        "kind: Secret",
        "kind: PodDisruptionBudget",
        "kind: NetworkPolicy",
        "volumeClaimTemplates:",
        "path: /readyz",
        "path: /healthz",
    ] {
        assert!(base.contains(kind), "the base lacks {kind}");
    }
    for vantage in ["eu-1", "us-1"] {
        let overlay = render_and_validate(&format!("overlays/{vantage}"));
        assert!(overlay.contains("kind: Deployment"), "{overlay}");
        assert!(
            overlay.contains(&format!("name: mxscope-worker-{vantage}")),
            "{overlay}"
        );
        assert!(
            overlay.contains(&format!(
                "- name: MXSCOPE_VANTAGE\n          value: {vantage}"
            )),
            "{overlay}"
        );
        // Out only to 25, 53, 443 and the coordinator (whose selector the
        // vantage label must not narrow).
        let policy = overlay
            .split("---")
            .find(|doc| doc.contains("kind: NetworkPolicy"))
            .unwrap();
        let mut ports: Vec<&str> = policy
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- port: "))
            .collect();
        ports.sort_unstable();
        assert_eq!(ports, ["25", "443", "53", "53", "7443", "9464"], "{policy}");
        let to_coordinator = policy.split("to:").nth(1).unwrap();
        assert!(
            to_coordinator.contains("app.kubernetes.io/name: mxscope-coordinator")
                && !to_coordinator
                    .split("ingress:")
                    .next()
                    .unwrap()
                    .contains("vantage"),
            "{policy}"
        );
        assert!(overlay.contains("runAsNonRoot: true"), "{overlay}");
    }
}

/// The example config files name only real settings: the commands get as
/// far as the first file they name (which does not exist here).
#[test]
fn example_config_files_are_accepted() {
    let dir = test_dir("deploy-config");
    let serve = Command::new(bin("mxscope"))
        .args(["serve", "--config"])
        .arg(deploy().join("mxscope.toml"))
        .env("MXSCOPE_ADMIN_TOKEN", "t")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success());
    assert!(stderr.contains("/etc/mxscope/"), "{stderr}");
    assert!(!stderr.contains("not a setting"), "{stderr}");
    let work = Command::new(bin("mxscope-worker"))
        .args(["work", "--config"])
        .arg(deploy().join("mxscope-worker.toml"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&work.stderr);
    assert!(!work.status.success());
    assert!(stderr.contains("/etc/mxscope/"), "{stderr}");
    assert!(!stderr.contains("not a setting"), "{stderr}");
}

/// A flag beats its `MXSCOPE_*` variable, which beats the config file; an
/// unknown key is refused with its name.
#[test]
fn flags_beat_variables_beat_the_config_file() {
    let dir = test_dir("deploy-precedence");
    // A regular file: no data directory can be made under it, and the
    // error names the one that was chosen.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = \"{}\"\n",
            blocker.join("from-file").display()
        ),
    )
    .unwrap();
    let serve = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = Command::new(bin("mxscope"));
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env("MXSCOPE_ADMIN_TOKEN", "t");
        if let Some(name) = env {
            cmd.env("MXSCOPE_DATA_DIR", blocker.join(name));
        }
        if let Some(name) = flag {
            cmd.arg("--data-dir").arg(blocker.join(name));
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(serve(None, None).contains("from-file"));
    assert!(serve(Some("from-env"), None).contains("from-env"));
    assert!(serve(Some("from-env"), Some("from-flag")).contains("from-flag"));

    std::fs::write(&config, "data-dri = \"x\"\n").unwrap();
    let stderr = serve(None, None);
    assert!(
        stderr.contains("`data-dri` is not a setting of `mxscope serve`"),
        "{stderr}"
    );
}
