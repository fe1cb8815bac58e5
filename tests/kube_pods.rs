//! The node-local pod source as a DaemonSet pod runs it: the real daemon binary with a
//! `kubernetes: { pods: node }` job, talking through a kubeconfig to `kube_mock.py` (a MOCK of
//! the API server's pod list/watch: no API server can run here), with real MCP servers
//! (FastMCP 1.x, the TypeScript SDK) on loopback standing in for the pods (their podIP).
//! Addresses: 127.0.0.210-219 only; every port is free-picked or fixed per address.

mod common;

use common::wait_until;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::daemon::{free_port, get_json, kubeconfig, Daemon, Scratch, TOKEN};
use common::kube::KubeMock;
use common::{require_peers, start_peers, Listener, Reaped};
use serde_json::{json, Value};

/// Seconds between the mock's BOOKMARK events: often, so resumes are exercised.
const BOOKMARKS: Option<&str> = Some("0.5");

/// A pod on `node` in `ns`, Running at `ip`, with one container port.
fn pod(ns: &str, name: &str, node: &str, ip: &str, port: (&str, u16), annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns, "annotations": annotations,
                     "labels": {"app.kubernetes.io/name": name, "team": "tools", "secret-label": "x"}},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "x",
                 "ports": [{"name": port.0, "containerPort": port.1}]}]},
        "status": {"phase": "Running", "podIP": ip}
    })
}

/// A daemon config with one pod job on node `n1` (interval 1h: only the watch acts).
fn config(dir: &Scratch, port: u16, api: SocketAddr, job_extra: &str) -> PathBuf {
    let cfg = dir.path("config.yaml");
    let text = format!(
        "api:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\nstore:\n  path: {}\ngone_after: 3\nhealth:\n  enabled: false\nkubernetes:\n  kubeconfig: {}\n  node: n1\n  timeout: 2s\n  retry: {{ initial: 200ms, max: 1s }}\njobs:\n  - name: pods\n    interval: 1h\n    jitter: 0%\n    kubernetes: {{ pods: node, labels: [app.kubernetes.io/name, team] }}\n{job_extra}",
        dir.path("inventory.db").display(),
        kubeconfig(dir, api).display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn servers(d: &Daemon) -> Vec<Value> {
    let (_, v) = d.get_json("/api/v1/servers?status=all");
    v["servers"].as_array().cloned().unwrap_or_default()
}

fn server_at<'a>(list: &'a [Value], ip: &str) -> Option<&'a Value> {
    list.iter().find(|s| s["ip"] == ip)
}

fn wait_status(d: &Daemon, ip: &str, status: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let list = servers(d);
        if let Some(s) = server_at(&list, ip).filter(|s| s["status"] == status) {
            return s.clone();
        }
        assert!(
            start.elapsed() < limit,
            "{ip} never {status} within {limit:?}: {list:?}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn node_pods_are_found_followed_through_deletes_and_phase_changes_and_survive_410_and_restarts() {
    if !require_peers("kube_pods") {
        return;
    }
    let dir = Scratch::new("kube-pods");
    let api: SocketAddr = format!("127.0.0.210:{}", free_port()).parse().unwrap();
    let mut mock = KubeMock::start_with(api, None, BOOKMARKS);
    let _peers = start_peers(&[
        ("py1-streamable", "127.0.0.211", 8000),
        ("ts-streamable", "127.0.0.212", 8000),
    ]);
    // a: opted in by annotation (port by name, explicit path); b: a port named mcp-*; c: on
    // another node (the field selector keeps it away).
    let a = pod(
        "team-a",
        "a",
        "n1",
        "127.0.0.211",
        ("web", 8000),
        json!({"mcp-scout.io/scan": "true", "mcp-scout.io/port": "web", "mcp-scout.io/path": "/mcp"}),
    );
    let b = pod(
        "team-b",
        "b",
        "n1",
        "127.0.0.212",
        ("mcp-tools", 8000),
        json!({}),
    );
    let c = pod("team-a", "c", "n2", "127.0.0.213", ("mcp", 8000), json!({}));
    for p in [&a, &b, &c] {
        mock.put(p);
    }
    let port = free_port();
    let cfg = config(&dir, port, api, "");
    let d = Daemon::start(
        &cfg,
        dir.path("daemon.log"),
        format!("127.0.0.1:{port}").parse().unwrap(),
    );

    let sa = wait_status(&d, "127.0.0.211", "active", Duration::from_secs(30));
    let sb = wait_status(&d, "127.0.0.212", "active", Duration::from_secs(30));
    assert_eq!(sa["url"], "http://127.0.0.211:8000/mcp");
    assert_eq!(sa["origins"], json!(["kubernetes"]));
    assert_eq!(sa["node"], "n1");
    assert_eq!(
        sa["k8s"],
        json!({"namespace": "team-a", "pod": "a", "node": "n1", "labels": {"app.kubernetes.io/name": "a", "team": "tools"}})
    );
    assert_eq!(sb["k8s"]["pod"], "b");
    assert!(
        server_at(&servers(&d), "127.0.0.213").is_none(),
        "a pod of node n2 is not ours"
    );

    // The field selector went out on the list and on the watch, and bookmarks were asked for.
    let reqs = mock.requests();
    let pods_reqs: Vec<&Value> = reqs
        .iter()
        .filter(|r| r["path"] == "/api/v1/pods")
        .collect();
    assert!(!pods_reqs.is_empty(), "{reqs:?}");
    for r in &pods_reqs {
        assert_eq!(r["query"]["fieldSelector"], "spec.nodeName=n1", "{r}");
    }
    assert!(
        pods_reqs.iter().any(|r| r["query"].get("watch").is_none()),
        "a list: {reqs:?}"
    );
    let watch = pods_reqs
        .iter()
        .find(|r| r["query"]["watch"] == "true")
        .expect("a watch");
    assert_eq!(watch["query"]["allowWatchBookmarks"], "true", "{watch}");

    // b stops Running: gone at once (gone_after is 3 runs of 1 h).
    let t = Instant::now();
    mock.ok(
        "POST",
        "/control/pods/team-b/b/phase",
        &json!({"phase": "Failed"}),
    );
    let gb = wait_status(&d, "127.0.0.212", "gone", Duration::from_secs(5));
    eprintln!("phase change -> gone in {:?}", t.elapsed());
    assert_eq!(
        gb["gone_reason"], "pod team-b/b is Failed, no longer Running",
        "{gb}"
    );
    // a is deleted: gone at once.
    mock.ok("DELETE", "/control/pods/team-a/a", &Value::Null);
    let ga = wait_status(&d, "127.0.0.211", "gone", Duration::from_secs(5));
    assert_eq!(ga["gone_reason"], "pod team-a/a was deleted");
    // a comes back during the watch.
    mock.put(&a);
    wait_status(&d, "127.0.0.211", "active", Duration::from_secs(10));

    // 410: the history is compacted and open watches end; the watcher relists.
    let lists_before = mock
        .requests()
        .iter()
        .filter(|r| r["path"] == "/api/v1/pods" && r["query"].get("watch").is_none())
        .count();
    mock.ok("POST", "/control/compact", &Value::Null);
    mock.put(&b); // Running again, seen after the relist
    wait_status(&d, "127.0.0.212", "active", Duration::from_secs(10));
    wait_until("a relist after the 410", Duration::from_secs(10), || {
        mock.requests()
            .iter()
            .filter(|r| r["path"] == "/api/v1/pods" && r["query"].get("watch").is_none())
            .count()
            > lists_before
    });

    // The API server restarts without b: after its relist, b is gone, a stays.
    let only_a = dir.path("pods.json");
    std::fs::write(&only_a, json!([a]).to_string()).unwrap();
    mock.stop();
    mock.restart(Some(only_a.as_path()));
    let gb = wait_status(&d, "127.0.0.212", "gone", Duration::from_secs(15));
    assert_eq!(
        gb["gone_reason"],
        "pod team-b/b is no longer listed on this node"
    );
    assert_eq!(
        server_at(&servers(&d), "127.0.0.211").unwrap()["status"],
        "active"
    );
    let reqs = mock.requests();
    assert!(
        reqs.iter().any(|r| r["query"]["watch"] == "true"),
        "watching the new server: {reqs:?}"
    );
    // And it still follows events there.
    mock.ok("DELETE", "/control/pods/team-a/a", &Value::Null);
    wait_status(&d, "127.0.0.211", "gone", Duration::from_secs(5));
    let (code, _) = d.get_json("/readyz");
    assert_eq!(code, 200);

    // SIGHUP with another node: the watch is built at start, so the daemon says the change
    // waits for a restart, and keeps watching n1.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("node: n1", "node: n2")).unwrap();
    d.signal("HUP");
    wait_until("the reload is logged", Duration::from_secs(10), || {
        d.logs().contains(
            "SIGHUP: kubernetes: changes (API, node, pod, Lease) take effect after a restart",
        )
    });
    mock.put(&a);
    wait_status(&d, "127.0.0.211", "active", Duration::from_secs(15));
}

#[test]
fn forbidden_bad_annotations_and_out_of_scope_pods_are_reported_not_probed() {
    if !require_peers("kube_pods") {
        return;
    }
    let dir = Scratch::new("kube-pods-faults");
    let api: SocketAddr = format!("127.0.0.214:{}", free_port()).parse().unwrap();
    let mock = KubeMock::start_with(api, None, BOOKMARKS);
    let _peers = start_peers(&[("py1-streamable", "127.0.0.215", 8000)]);
    let hostile = Listener::bind("127.0.0.216:0");
    mock.ok("POST", "/control/mode", &json!({"mode": "forbid-list"}));
    let port = free_port();
    // The wall: only 127.0.0.215; the hostile pod sits at .216.
    let cfg = config(&dir, port, api, "    scope: [127.0.0.215/32]\n");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = dir.path("daemon.log");
    let _child = Reaped(Daemon::spawn(&cfg, &log, &[]));
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    // Not ready while the ServiceAccount may not list pods; the reason names the permission.
    let start = Instant::now();
    let body = loop {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            drop(s);
            let (code, v) = get_json(addr, "/readyz");
            if code == 503 && v["reason"].as_str().is_some_and(|r| r.contains("pods")) {
                break v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no 503 naming the source: {}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("source kubernetes pods (job pods) fails"),
        "{reason}"
    );
    assert!(
        reason.contains("list pods at cluster scope: forbidden; the ServiceAccount needs a ClusterRole (and ClusterRoleBinding) with verb list on pods"),
        "{reason}"
    );
    assert!(
        body["failing_sources"]["kubernetes pods (job pods)"].is_string(),
        "{body}"
    );

    // Permission granted: ready, and the pods are read.
    let good = pod("ns", "good", "n1", "127.0.0.215", ("mcp", 8000), json!({}));
    let bad = pod(
        "ns",
        "bad",
        "n1",
        "127.0.0.215",
        ("mcp", 8001),
        json!({"mcp-scout.io/scan": "yes"}),
    );
    let evil = pod(
        "ns",
        "evil",
        "n1",
        "127.0.0.216",
        ("mcp", hostile.addr.port()),
        json!({}),
    );
    for p in [&good, &bad, &evil] {
        mock.put(p);
    }
    mock.ok("POST", "/control/mode", &json!({"mode": "normal"}));
    let d = {
        let mut w = Daemon::attach(addr, log.clone());
        w.wait_ready(Duration::from_secs(20));
        w
    };
    wait_status(&d, "127.0.0.215", "active", Duration::from_secs(20));
    // The bad pod, updated three times, is warned about once.
    for _ in 0..3 {
        mock.put(&bad);
    }
    mock.put(&evil);
    wait_until("the out-of-scope warning", Duration::from_secs(10), || {
        logs().contains("pod ns/evil offers")
    });
    std::thread::sleep(Duration::from_millis(500)); // let the updates arrive (asserting an absence)
    let l = logs();
    let warnings = l
        .matches("pod ns/bad: annotation mcp-scout.io/scan=\"yes\" is not \"true\" or \"false\"")
        .count();
    assert_eq!(warnings, 1, "one warning for the bad annotation:\n{l}");
    assert!(
        l.contains(&format!(
            "pod ns/evil offers 127.0.0.216:{}: out of scope (127.0.0.215/32), not probed",
            hostile.addr.port()
        )),
        "{l}"
    );
    assert_eq!(l.matches("pod ns/evil offers").count(), 1, "{l}");
    assert!(
        hostile.accepted.try_recv().is_err(),
        "the out-of-scope pod was contacted"
    );
    assert_eq!(servers(&d).len(), 1, "{:?}", servers(&d));
    assert_eq!(
        l.matches("list pods at cluster scope: forbidden").count(),
        1,
        "the 403 is logged once, not per retry:\n{l}"
    );
}

#[test]
fn an_unreachable_api_server_at_start_is_named_by_readyz_and_the_watch_recovers() {
    if !require_peers("kube_pods") {
        return;
    }
    let dir = Scratch::new("kube-pods-down");
    let api: SocketAddr = format!("127.0.0.217:{}", free_port()).parse().unwrap();
    let _peers = start_peers(&[("py1-streamable", "127.0.0.218", 8000)]);
    let port = free_port();
    let cfg = config(&dir, port, api, "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = dir.path("daemon.log");
    let _child = Reaped(Daemon::spawn(&cfg, &log, &[]));
    let start = Instant::now();
    let body = loop {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            drop(s);
            let (code, v) = get_json(addr, "/readyz");
            if code == 503
                && v["failing_sources"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
            {
                break v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no 503 naming the source: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let why = body["failing_sources"]["kubernetes pods (job pods)"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("list pods at cluster scope: cannot reach the Kubernetes API"),
        "{why}"
    );
    // The API server comes up with a pod: the watcher's back-off (at most 1 s) finds it.
    let pods = dir.path("pods.json");
    std::fs::write(
        &pods,
        json!([pod(
            "ns",
            "late",
            "n1",
            "127.0.0.218",
            ("mcp", 8000),
            json!({})
        )])
        .to_string(),
    )
    .unwrap();
    let _mock = KubeMock::start_with(api, Some(pods.as_path()), BOOKMARKS);
    let mut d = Daemon::attach(addr, log.clone());
    d.wait_ready(Duration::from_secs(15));
    let s = wait_status(&d, "127.0.0.218", "active", Duration::from_secs(15));
    assert_eq!(s["k8s"]["pod"], "late");
}

/// `namespaces: [team-a, team-c]`: one watch per namespace (namespaced list and watch paths,
/// never the cluster-scope one), and a pod of another namespace on this node is never seen
/// nor contacted.
#[test]
fn listed_namespaces_are_watched_one_by_one_and_others_are_never_probed() {
    if !require_peers("kube_pods") {
        return;
    }
    let dir = Scratch::new("kube-pods-ns");
    let api: SocketAddr = format!("127.0.0.219:{}", free_port()).parse().unwrap();
    let mock = KubeMock::start_with(api, None, BOOKMARKS);
    let _peers = start_peers(&[
        ("py1-streamable", "127.0.0.219", 8000),
        ("py1-streamable", "127.0.0.219", 8001),
    ]);
    let other = Listener::bind("127.0.0.219:0");
    mock.put(&pod(
        "team-a",
        "a",
        "n1",
        "127.0.0.219",
        ("mcp", 8000),
        json!({}),
    ));
    mock.put(&pod(
        "team-b",
        "b",
        "n1",
        "127.0.0.219",
        ("mcp", other.addr.port()),
        json!({}),
    ));
    let port = free_port();
    let cfg = config(&dir, port, api, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("pods: node,", "pods: node, namespaces: [team-a, team-c],"),
    )
    .unwrap();
    let d = Daemon::start(
        &cfg,
        dir.path("daemon.log"),
        format!("127.0.0.1:{port}").parse().unwrap(),
    );
    let sa = wait_status(&d, "127.0.0.219", "active", Duration::from_secs(30));
    assert_eq!(sa["k8s"]["namespace"], "team-a");
    // A pod added to team-c later is found by its own watch.
    mock.put(&pod(
        "team-c",
        "c",
        "n1",
        "127.0.0.219",
        ("mcp-x", 8001),
        json!({}),
    ));
    wait_until("team-c's pod is found", Duration::from_secs(15), || {
        servers(&d).iter().any(|s| {
            s["k8s"]["namespace"] == "team-c"
                && s["url"] == "http://127.0.0.219:8001/mcp"
                && s["status"] == "active"
        })
    });
    let reqs = mock.requests();
    let paths: Vec<&str> = reqs.iter().filter_map(|r| r["path"].as_str()).collect();
    assert!(
        paths
            .iter()
            .all(|p| *p == "/api/v1/namespaces/team-a/pods"
                || *p == "/api/v1/namespaces/team-c/pods"),
        "only the listed namespaces' pod paths: {paths:?}"
    );
    for ns in ["team-a", "team-c"] {
        assert!(
            reqs.iter()
                .any(|r| r["path"] == format!("/api/v1/namespaces/{ns}/pods")
                    && r["query"]["watch"] == "true"
                    && r["query"]["fieldSelector"] == "spec.nodeName=n1"),
            "a watch of {ns} with the node's field selector: {reqs:?}"
        );
    }
    assert!(
        other.accepted.try_recv().is_err(),
        "team-b's pod was contacted"
    );
    assert!(
        servers(&d)
            .iter()
            .all(|s| s["k8s"]["namespace"] != "team-b"),
        "{:?}",
        servers(&d)
    );
}
