//! Three daemons as the pods of one DaemonSet, against `kube_mock.py` (a MOCK of the API
//! server: no API server can run here): the `owner: leader` job runs on exactly one of them
//! and moves when that pod dies (SIGKILL: after the Lease term; SIGTERM: at once, the Lease is
//! released), and a `shard: auto` job's targets are split over the ready pods with no
//! overlap and nothing left out.
//!
//! Everything is on loopback: the mock on 127.0.0.229, the daemons' APIs on 127.0.0.220-222,
//! the swept targets in 127.0.0.224/28 (nothing listens there but a counting listener).
//!
//! The second test is the full DaemonSet simulation on a namespace LAN (root and the peers
//! needed): real MCP servers in per-node pod namespaces, counted on the server side, and one
//! real MCP Mesh registry (see its doc).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::daemon::{free_port, kubeconfig, Daemon, Scratch, TOKEN};
use common::kube::KubeMock;
use common::require_peers;
use serde_json::{json, Value};

const PODS: [&str; 3] = ["mcp-scout-a", "mcp-scout-b", "mcp-scout-c"];
const API_IPS: [&str; 3] = ["127.0.0.220", "127.0.0.221", "127.0.0.222"];
const MOCK_IP: &str = "127.0.0.229";
/// How long a leadership change may take: the 3 s term plus two 1 s renew periods, with
/// room for a loaded machine.
const MOVE_LIMIT: Duration = Duration::from_secs(15);

fn start_mock() -> KubeMock {
    KubeMock::start(format!("{MOCK_IP}:{}", free_port()).parse().unwrap())
}

/// Who holds the leader Lease, as the mock API stores it.
fn holder(mock: &KubeMock) -> Option<String> {
    let (code, v) = mock.call(
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/mcp-scout/leases/mcp-scout-leader",
        &Value::Null,
    );
    (code == 200)
        .then(|| v["spec"]["holderIdentity"].as_str().map(str::to_string))
        .flatten()
}

/// The DaemonSet's own pod `name`, Running and Ready.
fn daemonset_pod(mock: &KubeMock, name: &str, node: &str) {
    mock.put(&json!({
        "metadata": {"name": name, "namespace": "mcp-scout",
                     "labels": {"app.kubernetes.io/name": "mcp-scout"}},
        "spec": {"nodeName": node, "containers": [{"name": "scout", "image": "x"}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }));
}

fn config(dir: &Scratch, i: usize, api: SocketAddr, mock: SocketAddr) -> PathBuf {
    let kc = kubeconfig(dir, mock);
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

fn start(i: usize, mock: &KubeMock) -> Pod {
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
fn one_leader(pods: &[Pod], mock: &KubeMock, not: Option<usize>, limit: Duration) -> usize {
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
            if Some(i) != not && holder(mock).as_deref() == Some(PODS[i]) {
                return i;
            }
        }
        assert!(
            start.elapsed() < limit,
            "no single leader within {limit:?}: {states:?}, Lease held by {:?}",
            holder(mock)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_leader_job_runs_on_one_pod_and_moves_when_it_dies_and_shard_auto_splits_the_targets() {
    let mock = start_mock();
    for (i, p) in PODS.iter().enumerate() {
        daemonset_pod(&mock, p, &format!("node-{i}"));
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

    // The dead pod leaves the API (its node is drained): the next runs of the two left
    // split all 16 addresses between the two of them.
    let (code, v) = mock.call(
        "DELETE",
        &format!("/control/pods/mcp-scout/{}", PODS[first]),
        &Value::Null,
    );
    assert_eq!(code, 200, "{v}");
    let shares: Vec<u64> = pods
        .iter()
        .filter_map(|p| p.daemon.as_ref())
        .map(|d| {
            d.run_once_more("shared");
            let logs = d.logs();
            let line = logs
                .lines()
                .rfind(|l| l.contains("shard: auto: "))
                .unwrap()
                .to_string();
            assert!(line.contains("split over 2 ready pod(s)"), "{line}");
            let rest = line.split("shard: auto: ").nth(1).unwrap();
            rest.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(shares.len(), 2);
    assert_eq!(shares.iter().sum::<u64>(), 16, "rebalanced: {shares:?}");

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

/// The LAN of the DaemonSet simulation (`common::Testnet`, 12 hosts on 10.99.0.0/24, all
/// inside namespaces this test makes): three nodes, six pods (two per node), the mock API,
/// the Mesh registry and one server outside every pod, the leader job's target.
mod lan {
    pub(crate) const NODES: [&str; 3] = ["h1", "h2", "h3"];
    pub(crate) const NODE_IPS: [&str; 3] = ["10.99.0.11", "10.99.0.12", "10.99.0.13"];
    /// Pod j runs on node j / 2, in namespace h(4 + j) at 10.99.0.(14 + j).
    pub(crate) const PODS: usize = 6;
    pub(crate) const MOCK: (&str, &str) = ("h10", "10.99.0.20:6443");
    pub(crate) const MESH: (&str, &str) = ("h11", "10.99.0.21:18000");
    pub(crate) const SHARED: (&str, &str) = ("h12", "10.99.0.22");
    pub(crate) const MCP_PORT: u16 = 8000;
    pub(crate) const API: &str = "127.0.0.1:9464";

    pub(crate) fn pod_host(j: usize) -> String {
        format!("h{}", 4 + j)
    }
    pub(crate) fn pod_ip(j: usize) -> String {
        format!("10.99.0.{}", 14 + j)
    }
}

/// Who connected to a server, as its own accept loop logged it (`MCP_SCOUT_PEERS_CONNLOG`).
fn connections(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The full DaemonSet simulation: three daemons in three node namespaces, each with its own
/// `node`, watch the pods of their node through the mock API (a MOCK: no API server can run
/// here) and feed one real MCP Mesh registry. Six real MCP servers (the official Python
/// SDKs 1.x and 2.x) sit in per-node pod namespaces, on one flat pod network where every
/// node could reach every pod. Each server logs who connected to it.
///
/// Asserted: every pod's server is connected to only by its own node's daemon; the
/// `owner: leader` job's target only by the leader's; every server is listed once in Mesh;
/// `kill -9` of the leading node's daemon moves the leader job to one other node and lets
/// that node's pods expire from Mesh, while every other entry stays listed once and healthy.
#[test]
fn daemonset_simulation_each_node_probes_its_own_pods_and_mesh_lists_each_server_once() {
    use lan::*;
    if !(common::require_root("daemonset_simulation") && require_peers("daemonset_simulation")) {
        return;
    }
    let net = common::Testnet::up(12, &[]);
    let logs = Scratch::new("daemonset-sim");
    let conn_log = |name: &str| logs.path(&format!("{name}.connections"));
    let env = |name: &str| {
        vec![format!(
            "MCP_SCOUT_PEERS_CONNLOG={}",
            conn_log(name).display()
        )]
    };
    let mut peers = Vec::new();
    for j in 0..PODS {
        let sdk = if j % 2 == 0 {
            "py1-streamable"
        } else {
            "py2-streamable"
        };
        let (host, ip) = (pod_host(j), pod_ip(j));
        peers.push(net.peer_env(&host, sdk, &ip, MCP_PORT, None, &env(&host)));
    }
    peers.push(net.peer_env(
        SHARED.0,
        "py1-streamable",
        SHARED.1,
        MCP_PORT,
        None,
        &env(SHARED.0),
    ));
    let mock: SocketAddr = MOCK.1.parse().unwrap();
    let (mock_ip, mock_port) = (mock.ip().to_string(), mock.port());
    peers.push(net.peer(MOCK.0, "kube-mock", &mock_ip, mock_port, None));
    let mesh: SocketAddr = MESH.1.parse().unwrap();
    let (mesh_ip, mesh_port) = (mesh.ip().to_string(), mesh.port());
    peers.push(net.peer(MESH.0, "mesh-registry", &mesh_ip, mesh_port, None));
    let (mock_ns, mesh_ns) = (net.ns(MOCK.0), net.ns(MESH.0));

    let pods: Vec<Value> = (0..PODS)
        .map(|j| {
            json!({
                "metadata": {"name": format!("srv-{j}"), "namespace": "tools",
                             "labels": {"app": "tools"}},
                "spec": {"nodeName": format!("node-{}", j / 2),
                         "containers": [{"name": "mcp", "image": "x",
                                         "ports": [{"name": "mcp", "containerPort": MCP_PORT}]}]},
                "status": {"phase": "Running", "podIP": pod_ip(j),
                           "conditions": [{"type": "Ready", "status": "True"}]}
            })
        })
        .collect();
    let (code, body) = common::daemon::http_in(
        Some(&mock_ns),
        mock,
        "POST",
        "/control/pods",
        &[("Content-Type", "application/json")],
        &Value::from(pods).to_string(),
    );
    assert_eq!(code, 200, "{body}");

    let kc = kubeconfig(&logs, mock);
    let api: SocketAddr = API.parse().unwrap();
    let mut daemons: Vec<Option<Daemon>> = (0..NODES.len())
        .map(|i| {
            let dir = Scratch::new(&format!("daemonset-sim-node{i}"));
            let cfg = dir.path("config.yaml");
            std::fs::write(
                &cfg,
                format!(
                    "api: {{ listen: \"{api}\", token: {TOKEN} }}\nstore: {{ path: \"{}\" }}\ngone_after: 2\n\
                     health: {{ interval: 2s, timeout: 2s, unhealthy_threshold: 2, healthy_threshold: 1 }}\n\
                     kubernetes:\n  kubeconfig: {}\n  node: node-{i}\n  pod: mcp-scout-{i}\n  timeout: 2s\n  retry: {{ initial: 200ms, max: 1s }}\n  lease: {{ name: mcp-scout-leader, duration: 3s, renew: 1s }}\n\
                     jobs:\n  - {{ name: pods, interval: 1h, jitter: 0%, kubernetes: {{ pods: node, labels: [app] }} }}\n\
                     \x20 - {{ name: shared, owner: leader, targets: [{}], ports: \"{MCP_PORT}\", interval: 2s, jitter: 0% }}\n\
                     sinks:\n  - {{ name: mesh, type: mcp-mesh, url: \"http://{mesh}\", heartbeat: 2s }}\n",
                    dir.path("inventory.db").display(),
                    kc.display(),
                    SHARED.1,
                ),
            )
            .unwrap();
            let cmd = net.daemon_command(NODES[i], &cfg);
            let d = Daemon::start_in(cmd, &net.ns(NODES[i]), dir.path("daemon.log"), api);
            std::mem::forget(dir); // kept for the post-mortem
            Some(d)
        })
        .collect();

    let agents = || {
        let (code, v) = common::daemon::get_json_in(Some(&mesh_ns), mesh, "/agents");
        assert_eq!(code, 200, "{v}");
        v["agents"].as_array().cloned().unwrap_or_default()
    };
    let healthy = |a: &[Value]| -> Vec<String> {
        a.iter()
            .filter(|x| x["status"] == "healthy")
            .map(|x| x["id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // Every daemon's inventory: its own node's two pods, and the shared server where it leads.
    let ids = |d: &Daemon| -> Vec<(String, String)> {
        let (code, v) = d.get_json("/api/v1/servers");
        assert_eq!(code, 200, "{v}");
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["url"].as_str().unwrap().to_string(),
                    s["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let leader_of = |daemons: &[Option<Daemon>]| -> Vec<usize> {
        daemons
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let (_, v) = d.as_ref()?.get_json("/api/v1/jobs");
                let jobs = v
                    .as_array()
                    .cloned()
                    .or_else(|| v["jobs"].as_array().cloned())?;
                let job = jobs.iter().find(|j| j["name"] == "shared")?.clone();
                (job["active"] == true).then_some(i)
            })
            .collect()
    };

    let want = PODS + 1;
    let started = Instant::now();
    loop {
        let a = agents();
        if a.len() == want && healthy(&a).len() == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "Mesh does not list {want} healthy servers: {a:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let first = leader_of(&daemons);
    assert_eq!(first.len(), 1, "one leader: {first:?}");
    let first = first[0];

    // Each daemon knows exactly its node's pods (and the leader the shared server too); the
    // ids are the registry's ids, each listed once.
    let mut by_url = std::collections::BTreeMap::new();
    for (i, d) in daemons.iter().enumerate() {
        let d = d.as_ref().unwrap();
        let mut urls = Vec::new();
        for (url, id) in ids(d) {
            by_url.insert(url.clone(), id);
            urls.push(url);
        }
        urls.sort();
        let mut expect: Vec<String> = (2 * i..2 * i + 2)
            .map(|j| format!("http://{}:{MCP_PORT}/mcp", pod_ip(j)))
            .collect();
        if i == first {
            expect.push(format!("http://{}:{MCP_PORT}/mcp", SHARED.1));
        }
        expect.sort();
        assert_eq!(urls, expect, "node-{i}'s inventory");
    }
    let listed: Vec<String> = agents()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    let mut distinct = listed.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), listed.len(), "listed once: {listed:?}");
    let mut known: Vec<String> = by_url.values().cloned().collect();
    known.sort();
    assert_eq!(
        distinct, known,
        "the registry lists what the daemons found, once each"
    );

    // Ten seconds of steady state: still listed once each and healthy.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(10) {
        let a = agents();
        assert_eq!(a.len(), want, "listed once: {a:?}");
        assert_eq!(healthy(&a).len(), want, "no flapping: {a:?}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Server side: each pod was connected to only by its own node, the shared server only by
    // the leader.
    for j in 0..PODS {
        let seen = connections(&conn_log(&pod_host(j)));
        assert!(!seen.is_empty(), "pod {j} was never probed");
        let own = NODE_IPS[j / 2];
        eprintln!("pod {j} on node-{}: {} connections", j / 2, seen.len());
        assert!(
            seen.iter().all(|ip| ip == own),
            "pod {j} (node-{}) was connected to by {seen:?}",
            j / 2
        );
    }
    let shared_log = conn_log(SHARED.0);
    let before = connections(&shared_log);
    assert!(!before.is_empty(), "the leader job never probed its target");
    assert!(
        before.iter().all(|ip| ip == NODE_IPS[first]),
        "the shared server was connected to by {before:?}; the leader is node-{first}"
    );

    // kill -9 the leader's node daemon: the job moves to exactly one other node, which is then
    // the only one connecting to the shared server; the dead node's pods expire from Mesh.
    daemons[first].take().unwrap().kill9();
    let killed_at = Instant::now();
    let cut = connections(&shared_log).len();
    let second = loop {
        let l = leader_of(&daemons);
        assert!(l.len() <= 1, "two leaders: {l:?}");
        if let [i] = l[..] {
            break i;
        }
        assert!(
            killed_at.elapsed() < MOVE_LIMIT,
            "no new leader within {MOVE_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(second, first);
    let dead: Vec<String> = (2 * first..2 * first + 2)
        .map(|j| by_url[&format!("http://{}:{MCP_PORT}/mcp", pod_ip(j))].clone())
        .collect();
    loop {
        let a = agents();
        let h = healthy(&a);
        if dead.iter().all(|id| !h.contains(id)) && h.len() == want - dead.len() {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(90),
            "node-{first}'s pods {dead:?} did not expire, or others did: {a:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let a = agents();
    assert_eq!(a.len(), want, "nothing listed twice after the move: {a:?}");
    let after = connections(&shared_log);
    let moved = &after[cut..];
    assert!(
        !moved.is_empty(),
        "the new leader never probed the shared server"
    );
    assert!(
        moved.iter().all(|ip| ip == NODE_IPS[second]),
        "after the move the shared server was connected to by {moved:?}; the leader is node-{second}"
    );
    for j in (0..PODS).filter(|j| j / 2 != first) {
        let seen = connections(&conn_log(&pod_host(j)));
        assert!(
            seen.iter().all(|ip| ip == NODE_IPS[j / 2]),
            "pod {j}: {seen:?}"
        );
    }
    for d in daemons.into_iter().flatten() {
        let (code, _) = d.stop();
        assert_eq!(code, Some(0));
    }
    drop(peers);
}
