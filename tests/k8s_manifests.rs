//! The Kubernetes manifests (config/k8s) under `cargo test`: `scripts/k8s-validate.sh` must
//! pass, and its assertions (`scripts/k8s_manifests.py`) must catch what they claim to.
//!
//! No cluster runs here, so the script validates offline (kubernetes-validate's bundled
//! schemas, in the k8svalidate venv of scripts/peers/setup.sh) and runs the built binary for
//! `config check`, a /metrics scrape and a real Prometheus evaluating the dashboard's queries.
//! Network safety: the script's only daemon listens on 127.0.0.237, scans one FastMCP peer on
//! 127.0.0.236 and sends its sink to 127.0.0.238, and Prometheus on 127.0.0.239 scrapes only
//! that daemon; it is the one place besides tests/common that starts the binary, and its
//! configs are fixed in the script, loopback literals only.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{must_run_all, peers_dir, require_peers, root, wait_with_deadline};

/// The whole script: renderings, validation, assertions, config checks, a daemon started,
/// scraped and stopped (about 15 s here; a loaded machine may take several times that).
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);
/// One run of the Python checks.
const CHECK_LIMIT: Duration = Duration::from_secs(60);

fn python() -> PathBuf {
    peers_dir().join("k8svalidate/bin/python")
}

/// Whether the k8svalidate venv is installed; under `must_run_all` its absence fails.
fn require_k8svalidate(test: &str) -> bool {
    if python().exists()
        && peers_dir()
            .join("k8svalidate/bin/kubernetes-validate")
            .exists()
    {
        return true;
    }
    assert!(
        !must_run_all(),
        "{test}: {} missing; run scripts/peers/setup.sh (scripts/test.sh does)",
        peers_dir().join("k8svalidate").display()
    );
    eprintln!("SKIPPED {test}: the k8svalidate venv is missing; run scripts/peers/setup.sh");
    false
}

/// `k8s_manifests.py ARGS` with stdin from `input`: (exit code, stdout + stderr).
fn checks(args: &[&str], input: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("scripts/k8s_manifests.py"))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn k8s_manifests.py");
    if let Some(text) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = wait_with_deadline(child, CHECK_LIMIT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-scout-k8s-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The base rendered by the script's own renderer (the one used where kubectl is missing;
/// the script checks that it agrees with kubectl's).
fn render_base() -> String {
    let dir = root().join("config/k8s/base");
    let (code, out) = checks(&["render", dir.to_str().unwrap()], None);
    assert_eq!(code, 0, "render: {out}");
    out
}

fn check_rendered(rendered: &str, dir: &Path) -> (i32, String) {
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, rendered).expect("write rendering");
    let repo = root();
    checks(
        &[
            "check",
            "base",
            file.to_str().unwrap(),
            "--repo",
            repo.to_str().unwrap(),
            "--config-out",
            dir.join("config.yaml").to_str().unwrap(),
        ],
        None,
    )
}

#[test]
fn k8s_validate_script_passes_on_the_manifests() {
    if !require_k8svalidate("k8s_validate_script_passes_on_the_manifests")
        || !require_peers("k8s_validate_script_passes_on_the_manifests")
    {
        return;
    }
    let child = Command::new("bash")
        .arg(root().join("scripts/k8s-validate.sh"))
        .env("MCP_SCOUT_BIN", env!("CARGO_BIN_EXE_mcp-scout"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scripts/k8s-validate.sh");
    let out = wait_with_deadline(child, SCRIPT_LIMIT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "scripts/k8s-validate.sh failed:\n{text}"
    );
    assert!(text.contains("k8s-validate: all passed"), "{text}");
    eprintln!("{text}");
}

#[test]
fn restricted_assertions_name_each_violation() {
    if !require_k8svalidate("restricted_assertions_name_each_violation") {
        return;
    }
    let base = render_base();
    let dir = temp_dir("restricted");
    let (code, out) = check_rendered(&base, &dir);
    assert_eq!(code, 0, "the base itself must pass:\n{out}");
    // (what to break, how, the failure line that must name it)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "privilege escalation",
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
            "allowPrivilegeEscalation must be false",
        ),
        (
            "a writable root",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            "readOnlyRootFilesystem must be true",
        ),
        (
            "a capability",
            "- ALL",
            "- NET_ADMIN",
            "capabilities.drop must contain ALL",
        ),
        (
            "the baseline level",
            "pod-security.kubernetes.io/enforce: restricted",
            "pod-security.kubernetes.io/enforce: baseline",
            "label pod-security.kubernetes.io/enforce is 'baseline', expected 'restricted'",
        ),
        (
            "any Lease",
            "- mcp-scout-leader",
            "- some-other-lease",
            "resourceNames [mcp-scout-leader]",
        ),
        (
            "a cluster-wide write",
            "  - watch\n",
            "  - watch\n  - delete\n",
            "expected only pods get/list/watch",
        ),
        (
            "a short grace period",
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 10",
            "must exceed the daemon's worst-case shutdown 17 s",
        ),
        (
            "an unsafe sysctl",
            "net.ipv4.ping_group_range",
            "net.ipv4.ip_forward",
            "sysctl net.ipv4.ip_forward is not one of the safe sysctls",
        ),
        (
            "a root UID",
            "\n          runAsUser: 65532",
            "\n          runAsUser: 0",
            "runAsNonRoot must be true and runAsUser non-zero",
        ),
    ];
    for (what, from, to, expected) in cases {
        assert!(base.contains(from), "{what}: {from:?} not in the rendering");
        let broken = base.replacen(from, to, 1);
        let (code, out) = check_rendered(&broken, &dir);
        assert_eq!(code, 1, "{what}: not caught:\n{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("FAIL: ") && l.contains(expected)),
            "{what}: no FAIL line containing {expected:?}:\n{out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validator_warnings_fail_except_for_crd_kinds() {
    if !require_k8svalidate("validator_warnings_fail_except_for_crd_kinds") {
        return;
    }
    let crd = "INFO a.yaml passed for resource daemonset/mcp-scout against version 1.30\n\
               WARN a.yaml Couldn't find schema for kind PodMonitor with api version monitoring.coreos.com/v1 for kubernetes version 1.30\n";
    let (code, out) = checks(&["validate-output"], Some(crd));
    assert_eq!(code, 0, "a CRD kind is not an error:\n{out}");
    assert!(out.contains("not validated: PodMonitor"), "{out}");
    let typo = format!(
        "{crd}WARN a.yaml Couldn't find schema for kind Deployment with api version app/v1 for kubernetes version 1.30\n"
    );
    let (code, out) = checks(&["validate-output"], Some(&typo));
    assert_eq!(code, 1, "a wrong apiVersion must fail:\n{out}");
    assert!(
        out.contains("FAIL: kubernetes-validate: WARN a.yaml Couldn't find schema for kind Deployment with api version app/v1"),
        "{out}"
    );
}

#[test]
fn a_dashboard_metric_missing_from_the_scrape_fails_naming_it() {
    if !require_k8svalidate("a_dashboard_metric_missing_from_the_scrape_fails_naming_it") {
        return;
    }
    let dir = temp_dir("metrics");
    let names = dir.join("names");
    let scrape = dir.join("scrape.txt");
    std::fs::write(&names, "mcp_scout_servers\nmcp_scout_no_such_total\n").unwrap();
    std::fs::write(
        &scrape,
        "# TYPE mcp_scout_servers gauge\nmcp_scout_servers{kind=\"mcp\"} 1\n# EOF\n",
    )
    .unwrap();
    let (code, out) = checks(
        &[
            "metrics-present",
            names.to_str().unwrap(),
            scrape.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.trim(), "mcp_scout_no_such_total");
    let _ = std::fs::remove_dir_all(&dir);
}
