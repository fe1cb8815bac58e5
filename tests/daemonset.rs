//! Three daemons as the pods of one DaemonSet, against `kube_mock.py` (a MOCK of the API
//! server: no API server can run here): the `owner: leader` job runs on exactly one of them
//! and moves when that pod dies (SIGKILL: after the Lease term; SIGTERM: at once, the Lease is
//! released), and a `shard: auto` job's targets are split over the ready pods with no
//! overlap and nothing left out.
//!
//! Everything is on loopback: the mock on 127.0.0.229, the daemons' APIs on 127.0.0.220-222,
//! the swept targets in 127.0.0.224/28 (nothing listens there but a counting listener).
//!
//! Not yet here (see the report of the k2 helper): the network-namespace nodes with real MCP
//! servers and the Mesh registry of the full DaemonSet simulation.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{free_port, http, Daemon, Scratch, TOKEN};
use common::{ReadyLine, Reaped};
use serde_json::{json, Value};

const PODS: [&str; 3] = ["mcp-scout-a", "mcp-scout-b", "mcp-scout-c"];
const API_IPS: [&str; 3] = ["127.0.0.220", "127.0.0.221", "127.0.0.222"];
const MOCK_IP: &str = "127.0.0.229";
/// How long a leadership change may take: the 3 s term plus two 1 s renew periods, with
/// room for a loaded machine.
const MOVE_LIMIT: Duration = Duration::from_secs(15);

struct Mock {
    addr: SocketAddr,
    _child: Reaped,
}

impl Mock {
    fn start() -> Self {
        let addr: SocketAddr = format!("{MOCK_IP}:{}", free_port()).parse().unwrap();
        let child = Command::new(common::root().join("scripts/peers/run.sh"))
            .args(["kube-mock", "--listen", &addr.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kube-mock");
        let mut child = Reaped(child);
        let line =
            ReadyLine::watch(&mut child).wait(&mut child, "kube-mock", Duration::from_secs(20));
        assert!(line.starts_with("READY"), "{line}");
        Self {
            addr,
            _child: child,
        }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let (code, text) = http(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn holder(&self) -> Option<String> {
        let (code, v) = self.call(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/mcp-scout/leases/mcp-scout-leader",
            &Value::Null,
        );
        (code == 200)
            .then(|| v["spec"]["holderIdentity"].as_str().map(str::to_string))
            .flatten()
    }

    /// The DaemonSet's own pod `name`, Running and Ready.
    fn daemonset_pod(&self, name: &str, node: &str) {
        let pod = json!({
            "metadata": {"name": name, "namespace": "mcp-scout",
                         "labels": {"app.kubernetes.io/name": "mcp-scout"}},
            "spec": {"nodeName": node, "containers": [{"name": "scout", "image": "x"}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let (code, v) = self.call("POST", "/control/pods", &pod);
        assert_eq!(code, 200, "{v}");
    }
}

fn config(dir: &Scratch, i: usize, api: SocketAddr, mock: SocketAddr) -> PathBuf {
    let kc = dir.path("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: http://{mock}\nusers:\n- name: scout\n  user:\n    token: mock-token\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: scout\ncurrent-context: mock\n"
        ),
    )
    .unwrap();
    let cfg = dir.path("config.yaml");
    let text = format!(
        "api:\n  listen: {api}\n  token: {TOKEN}\nstore:\n  path: {}\nhealth:\n  enabled: false\n\
         kubernetes:\n  kubeconfig: {}\n  node: node-{i}\n  pod: {}\n  timeout: 2s\n  retry: {{ initial: 200ms, max: 1s }}\n  lease: {{ name: mcp-scout-leader, duration: 3s, renew: 1s }}\n\
         jobs:\n  - name: cluster\n    owner: leader\n    targets: [127.0.0.239]\n    ports: \"9\"\n    interval: 1s\n    jitter: 0%\n    fingerprint: {{ enabled: false }}\n\
         \x20 - name: shared\n    shard: auto\n    targets: [127.0.0.224/28]\n    ports: \"9\"\n    interval: 1h\n    jitter: 0%\n    sweep: {{ ping: false }}\n    fingerprint: {{ enabled: false }}\n",
        dir.path("inventory.db").display(),
        kc.display(),
        PODS[i],
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

struct Pod {
    daemon: Option<Daemon>,
}

fn start(i: usize, mock: &Mock) -> Pod {
    let dir = Scratch::new(&format!("daemonset-{i}"));
    let api: SocketAddr = format!("{}:{}", API_IPS[i], free_port()).parse().unwrap();
    let cfg = config(&dir, i, api, mock.addr);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), api);
    std::mem::forget(dir); // the files outlive the handle for the post-mortem
    Pod { daemon: Some(d) }
}

/// (the `cluster` job's `active`, the `mcp_scout_leader` gauge) of a live pod.
fn leads(p: &Pod) -> Option<(bool, bool)> {
    let d = p.daemon.as_ref()?;
    let (code, v) = d.get_json("/api/v1/jobs");
    assert_eq!(code, 200, "{v}");
    let jobs = v
        .as_array()
        .cloned()
        .or_else(|| v["jobs"].as_array().cloned())?;
    let job = jobs.iter().find(|j| j["name"] == "cluster")?;
    assert_eq!(job["owner"], "leader", "{job}");
    let active = job["active"].as_bool().unwrap();
    let (_, text) = d.http("GET", "/metrics", &[], "");
    let gauge = text
        .lines()
        .find(|l| l.starts_with("mcp_scout_leader "))
        .map(|l| l.ends_with(" 1"))
        .unwrap_or(false);
    Some((active, gauge))
}

/// Wait until exactly one live pod leads (job active and gauge 1, and the Lease names it)
/// and no other does; returns its index.
fn one_leader(pods: &[Pod], mock: &Mock, not: Option<usize>, limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let states: Vec<Option<(bool, bool)>> = pods.iter().map(leads).collect();
        let leaders: Vec<usize> = states
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some_and(|(a, g)| a && g))
            .map(|(i, _)| i)
            .collect();
        let any_active = states.iter().flatten().filter(|(a, _)| *a).count();
        assert!(any_active <= 1, "two pods run the leader job: {states:?}");
        if let [i] = leaders[..] {
            if Some(i) != not && mock.holder().as_deref() == Some(PODS[i]) {
                return i;
            }
        }
        assert!(
            start.elapsed() < limit,
            "no single leader within {limit:?}: {states:?}, Lease held by {:?}",
            mock.holder()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_leader_job_runs_on_one_pod_and_moves_when_it_dies_and_shard_auto_splits_the_targets() {
    let mock = Mock::start();
    for (i, p) in PODS.iter().enumerate() {
        mock.daemonset_pod(p, &format!("node-{i}"));
    }
    let mut pods: Vec<Pod> = (0..3).map(|i| start(i, &mock)).collect();

    // shard: auto: the first runs' shares of the 16 addresses add up, with no overlap (each
    // address has one owner by construction; the counts prove every pod took part).
    let started = Instant::now();
    let shares: Vec<u64> = loop {
        let got: Vec<Option<u64>> = pods
            .iter()
            .map(|p| {
                let logs = p.daemon.as_ref().unwrap().logs();
                let line = logs
                    .lines()
                    .find(|l| l.contains("shard: auto: "))?
                    .to_string();
                let rest = line.split("shard: auto: ").nth(1)?;
                rest.split(' ').next()?.parse().ok()
            })
            .collect();
        if got.iter().all(Option::is_some) {
            break got.into_iter().flatten().collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no shard: auto run in every pod"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shares.iter().sum::<u64>(), 16, "{shares:?}");
    assert!(shares.iter().all(|n| *n > 0), "{shares:?}");

    // One leader; SIGKILL moves it after the term, to another pod.
    let first = one_leader(&pods, &mock, None, MOVE_LIMIT);
    pods[first].daemon.take().unwrap().kill9();
    let killed_at = Instant::now();
    let second = one_leader(&pods, &mock, Some(first), MOVE_LIMIT);
    assert_ne!(second, first);
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "a killed holder's Lease was taken before its term ended ({:?})",
        killed_at.elapsed()
    );

    // SIGTERM releases the Lease: the last pod takes over within about one renew period.
    let (code, _) = pods[second].daemon.take().unwrap().stop();
    assert_eq!(code, Some(0));
    let termed_at = Instant::now();
    let third = one_leader(&pods, &mock, Some(second), MOVE_LIMIT);
    assert!(third != first && third != second);
    assert!(
        termed_at.elapsed() < Duration::from_millis(2_900),
        "a released Lease took {:?} to move (the term is 3 s)",
        termed_at.elapsed()
    );
}
