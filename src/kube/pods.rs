//! The node-local pod source (`kubernetes: { pods: node }`): a kube-runtime watcher of the
//! pods on this node (`fieldSelector=spec.nodeName=<node>`, as Prometheus's pod role does,
//! because the API server indexes pods by node) turned into candidates to fingerprint.
//!
//! **Candidates.** A Running pod with a pod IP yields one candidate per port:
//! - annotated `mcp-scout.io/scan: "true"`: the port of `mcp-scout.io/port` (a number, or a
//!   container port's name), else every TCP container port it declares; with
//!   `mcp-scout.io/path` (a path starting with `/`) as the only path to try;
//! - any container port named `mcp` or `mcp-*` (annotation or not);
//! - with `all_ports: true`, every TCP container port.
//!
//! A malformed annotation (a scan value other than "true"/"false", a port that is neither a
//! number in 1..=65535 nor a declared port name, a path not starting with `/`) skips the
//! pod, with ONE warning naming the pod and the annotation: warnings are remembered per
//! (pod, annotation, value), so a pod updated every few seconds does not repeat it.
//!
//! **Events.** [`watch`] keeps a map pod → candidates and sends only differences:
//! [`PodEvent::Appeared`] for a new or changed candidate, [`PodEvent::Gone`] when a pod is
//! deleted, stops Running, or no longer declares a port. After a relist (the API server
//! restarted, a 410 Gone), pods missing from the new list are gone too. The scope wall is
//! applied by the consumer, which knows the job's scope.
//!
//! **Faults.** Each watcher stream backs off between errors (kube's `StreamBackoff` with an
//! exponential back-off from `kubernetes.retry`, reset by the first good event), so an
//! unreachable API server costs one attempt per back-off step. Every error is turned into a
//! sentence ([`super::explain`]: a 403 names the missing permission) and reported as
//! [`PodEvent::Failing`] once per distinct message; the first good event after it sends
//! [`PodEvent::Healthy`]. A 410 Gone is routine (the watcher relists) and not a failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::WatchStreamExt;
use ::kube::Api;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::finding::K8sInfo;

/// The annotation that opts a pod in.
pub const ANNOTATION_SCAN: &str = "mcp-scout.io/scan";
/// The annotation naming the port (a number or a container port name).
pub const ANNOTATION_PORT: &str = "mcp-scout.io/port";
/// The annotation naming the MCP path.
pub const ANNOTATION_PATH: &str = "mcp-scout.io/path";
/// Longest accepted `mcp-scout.io/path`.
pub const MAX_PATH_LEN: usize = 256;
/// Pods tracked at once; beyond it new pods are ignored with a warning (a node runs at most
/// 110 pods by default, so this is a guard, not a limit anyone should meet).
pub const MAX_PODS: usize = 10_000;
/// Remembered (pod, annotation, value) warnings; cleared when full.
pub const MAX_WARNED: usize = 10_000;

/// A job's `kubernetes:` source as typed and validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodsSpec {
    /// Namespaces to watch; empty: every namespace (one cluster-scope watch).
    pub namespaces: Vec<String>,
    /// Pod labels copied into records' `k8s.labels`.
    pub labels: Vec<String>,
    /// Every TCP container port is a candidate.
    pub all_ports: bool,
}

/// One port of one pod worth fingerprinting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCandidate {
    /// `namespace/name`.
    pub key: String,
    /// Pod IP and port.
    pub addr: SocketAddr,
    /// `mcp-scout.io/path`, the only path to try when set.
    pub path: Option<String>,
    /// What records carry as `k8s`.
    pub k8s: K8sInfo,
}

/// What the watcher tells its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodEvent {
    /// A new or changed candidate.
    Appeared(PodCandidate),
    /// A candidate that no longer exists, and why (for the change's reason).
    Gone {
        /// The candidate as last seen.
        candidate: PodCandidate,
        /// Why, such as "pod ns/a was deleted".
        reason: String,
    },
    /// The API answers again (after [`PodEvent::Failing`]).
    Healthy,
    /// The API fails; the sentence names what and how to fix it.
    Failing(String),
}

/// A malformed annotation: the pod is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pod {pod}: annotation {annotation}={value:?} {problem}; the pod is skipped until it is fixed"
)]
pub struct AnnotationError {
    /// `namespace/name`.
    pub pod: String,
    /// The annotation key.
    pub annotation: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong and the fix.
    pub problem: &'static str,
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The candidates of one pod (none unless Running with a pod IP), or why it is skipped.
pub fn candidates(pod: &Pod, spec: &PodsSpec) -> Result<Vec<PodCandidate>, AnnotationError> {
    let key = key_of(pod);
    let status = pod.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) != Some("Running") {
        return Ok(Vec::new());
    }
    let Some(ip) = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|s| s.parse::<IpAddr>().ok())
    else {
        return Ok(Vec::new());
    };
    let empty = BTreeMap::new();
    let notes = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let bad = |annotation: &'static str, value: &str, problem: &'static str| AnnotationError {
        pod: key.clone(),
        annotation,
        value: value.to_string(),
        problem,
    };
    // (name, number) of every TCP container port.
    let ports: Vec<(Option<&str>, u16)> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        .filter_map(|p| {
            u16::try_from(p.container_port)
                .ok()
                .filter(|n| *n > 0)
                .map(|n| (p.name.as_deref(), n))
        })
        .collect();
    let scan = match notes.get(ANNOTATION_SCAN).map(|v| v.trim()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(bad(
                ANNOTATION_SCAN,
                v,
                "is not \"true\" or \"false\"; write mcp-scout.io/scan: \"true\"",
            ))
        }
    };
    let path = match notes.get(ANNOTATION_PATH) {
        None => None,
        Some(p)
            if p.starts_with('/')
                && p.len() <= MAX_PATH_LEN
                && !p.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Some(p.clone())
        }
        Some(p) => {
            return Err(bad(
                ANNOTATION_PATH,
                p,
                "is not a URL path; write a path starting with /, such as /mcp",
            ))
        }
    };
    let annotated_port = match notes.get(ANNOTATION_PORT).map(|v| v.trim()) {
        None => None,
        Some(v) => match v.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => match ports.iter().find(|(name, _)| *name == Some(v)) {
                Some((_, n)) => Some(*n),
                None => {
                    return Err(bad(
                        ANNOTATION_PORT,
                        v,
                        "is neither a port number (1-65535) nor the name of a container port of the pod",
                    ))
                }
            },
        },
    };
    let mut chosen: Vec<(u16, Option<String>)> = Vec::new();
    let mut add = |port: u16, path: Option<String>| {
        if !chosen.iter().any(|(p, _)| *p == port) {
            chosen.push((port, path));
        }
    };
    if scan {
        match annotated_port {
            Some(p) => add(p, path.clone()),
            None => ports.iter().for_each(|(_, p)| add(*p, path.clone())),
        }
    }
    for (name, p) in &ports {
        let named = name.is_some_and(|n| n == "mcp" || n.starts_with("mcp-"));
        if named || spec.all_ports {
            add(*p, if scan { path.clone() } else { None });
        }
    }
    let labels = pod
        .metadata
        .labels
        .as_ref()
        .map(|l| {
            spec.labels
                .iter()
                .filter_map(|k| l.get(k).map(|v| (k.clone(), v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let k8s = K8sInfo {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        labels,
    };
    Ok(chosen
        .into_iter()
        .map(|(port, path)| PodCandidate {
            key: key.clone(),
            addr: SocketAddr::new(ip, port),
            path,
            k8s: k8s.clone(),
        })
        .collect())
}

/// Settings of one pod watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// This node's name (the field selector).
    pub node: String,
    /// What to watch and copy.
    pub spec: PodsSpec,
    /// First back-off after an error.
    pub retry_initial: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
}

/// The pods seen and what was said about them.
#[derive(Default)]
struct Tracker {
    pods: HashMap<String, Vec<PodCandidate>>,
    warned: HashSet<(String, &'static str, String)>,
    /// Keys listed since each scope's `Init` (a relist in progress), by scope index.
    relisting: HashMap<usize, HashSet<String>>,
    full_warned: bool,
}

impl Tracker {
    /// Apply one pod's new state; returns the events to send.
    fn apply(&mut self, pod: &Pod, spec: &PodsSpec, out: &mut Vec<PodEvent>) {
        let key = key_of(pod);
        let new = match candidates(pod, spec) {
            Ok(c) => c,
            Err(e) => {
                if self.warned.len() >= MAX_WARNED {
                    self.warned.clear();
                }
                if self
                    .warned
                    .insert((key.clone(), e.annotation, e.value.clone()))
                {
                    tracing::warn!("{e}");
                }
                Vec::new()
            }
        };
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into());
        let reason = if phase == "Running" {
            format!("pod {key} no longer offers this port")
        } else {
            format!("pod {key} is {phase}, no longer Running")
        };
        self.replace(key, new, &reason, out);
    }

    fn replace(
        &mut self,
        key: String,
        new: Vec<PodCandidate>,
        reason: &str,
        out: &mut Vec<PodEvent>,
    ) {
        let old = self.pods.remove(&key).unwrap_or_default();
        for c in &old {
            if !new.iter().any(|n| n.addr == c.addr) {
                out.push(PodEvent::Gone {
                    candidate: c.clone(),
                    reason: reason.to_string(),
                });
            }
        }
        for n in &new {
            if !old.contains(n) {
                out.push(PodEvent::Appeared(n.clone()));
            }
        }
        if !new.is_empty() {
            if self.pods.len() >= MAX_PODS {
                if !self.full_warned {
                    self.full_warned = true;
                    tracing::warn!("more than {MAX_PODS} pods with candidates on this node; {key} and later ones are ignored");
                }
                return;
            }
            self.pods.insert(key, new);
        }
    }

    fn delete(&mut self, pod: &Pod, out: &mut Vec<PodEvent>) {
        let key = key_of(pod);
        self.warned.retain(|(k, _, _)| *k != key);
        let reason = format!("pod {key} was deleted");
        self.replace(key, Vec::new(), &reason, out);
    }

    /// A relist of `scope` (None: every namespace) ended: pods it did not list are gone.
    fn relisted(&mut self, idx: usize, scope: Option<&str>, out: &mut Vec<PodEvent>) {
        let seen = self.relisting.remove(&idx).unwrap_or_default();
        let stale: Vec<String> = self
            .pods
            .keys()
            .filter(|k| scope.is_none_or(|ns| k.split('/').next() == Some(ns)))
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in stale {
            let reason = format!("pod {key} is no longer listed on this node");
            self.warned.retain(|(k, _, _)| *k != key);
            self.replace(key, Vec::new(), &reason, out);
        }
    }
}

/// What a watcher error means; `None` for the routine 410 Gone that makes it relist.
fn describe(scope: Option<&str>, e: &watcher::Error) -> Option<String> {
    let where_ = match scope {
        None => "at cluster scope".to_string(),
        Some(ns) => format!("in namespace {ns}"),
    };
    match e {
        watcher::Error::InitialListFailed(e) => Some(super::explain("list", "pods", &where_, e)),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            Some(super::explain("watch", "pods", &where_, e))
        }
        watcher::Error::WatchError(s) if s.code == 410 => None,
        watcher::Error::WatchError(s) => Some(super::explain(
            "watch",
            "pods",
            &where_,
            &::kube::Error::Api(s.clone()),
        )),
        watcher::Error::NoResourceVersion => Some(format!(
            "watch pods {where_}: the API server sent no resourceVersion"
        )),
    }
}

/// Watch the pods of `opts.node` until `stop`, sending [`PodEvent`]s to `events`.
pub async fn watch(
    client: ::kube::Client,
    opts: WatchOptions,
    events: mpsc::Sender<PodEvent>,
    stop: CancellationToken,
) {
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", opts.node));
    let scopes: Vec<Option<String>> = if opts.spec.namespaces.is_empty() {
        vec![None]
    } else {
        opts.spec.namespaces.iter().cloned().map(Some).collect()
    };
    let streams = scopes.iter().enumerate().map(|(idx, ns)| {
        let api: Api<Pod> = match ns {
            None => Api::all(client.clone()),
            Some(ns) => Api::namespaced(client.clone(), ns),
        };
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(opts.retry_initial)
            .with_max_delay(opts.retry_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        watcher(api, config.clone())
            .backoff(watcher::ExponentialBackoff::from(backoff))
            .map(move |ev| (idx, ev))
            .boxed()
    });
    let mut merged = futures_util::stream::select_all(streams);
    let mut tracker = Tracker::default();
    let mut failing: Option<String> = None;
    let mut out = Vec::new();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            n = merged.next() => n,
        };
        let Some((idx, ev)) = next else { break };
        let scope = scopes[idx].as_deref();
        match ev {
            Err(e) => {
                let Some(msg) = describe(scope, &e) else {
                    tracing::debug!("pod watch: {e}; relisting");
                    continue;
                };
                if failing.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(
                        "kubernetes pods: {msg}; retrying with back-off (at most {:?})",
                        opts.retry_max
                    );
                    failing = Some(msg.clone());
                    out.push(PodEvent::Failing(msg));
                }
            }
            Ok(ev) => {
                if failing.take().is_some() {
                    tracing::info!("kubernetes pods: the API answers again");
                    out.push(PodEvent::Healthy);
                }
                match ev {
                    Event::Init => {
                        tracker.relisting.insert(idx, HashSet::new());
                    }
                    Event::InitApply(pod) => {
                        if let Some(seen) = tracker.relisting.get_mut(&idx) {
                            seen.insert(key_of(&pod));
                        }
                        tracker.apply(&pod, &opts.spec, &mut out);
                    }
                    Event::InitDone => tracker.relisted(idx, scope, &mut out),
                    Event::Apply(pod) => tracker.apply(&pod, &opts.spec, &mut out),
                    Event::Delete(pod) => tracker.delete(&pod, &mut out),
                }
            }
        }
        for ev in out.drain(..) {
            if events.send(ev).await.is_err() {
                return;
            }
        }
    }
}

/// kube's watcher, named here so the call site reads as what it is.
fn watcher(
    api: Api<Pod>,
    config: watcher::Config,
) -> impl futures_util::Stream<Item = watcher::Result<Event<Pod>>> + Send {
    watcher::watcher(api, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn running(annotations: serde_json::Value, ports: serde_json::Value) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns", "annotations": annotations,
                         "labels": {"team": "x", "other": "y"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": "10.1.2.3"}
        }))
    }

    fn addrs(c: &[PodCandidate]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{}{}", c.addr, c.path.as_deref().unwrap_or("")))
            .collect()
    }

    #[test]
    fn annotations_and_named_ports_make_candidates() {
        let spec = PodsSpec {
            labels: vec!["team".into()],
            ..PodsSpec::default()
        };
        let ports = serde_json::json!([
            {"name": "http", "containerPort": 8080},
            {"name": "mcp-tools", "containerPort": 9000},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"}
        ]);
        let c = candidates(&running(serde_json::json!({}), ports.clone()), &spec).unwrap();
        assert_eq!(addrs(&c), ["10.1.2.3:9000"]);
        assert_eq!(c[0].k8s.labels.len(), 1);
        assert_eq!(c[0].k8s.node, "n1");
        let c = candidates(
            &running(
                serde_json::json!({"mcp-scout.io/scan": "true", "mcp-scout.io/port": "http", "mcp-scout.io/path": "/v1/mcp"}),
                ports.clone(),
            ),
            &spec,
        )
        .unwrap();
        assert_eq!(addrs(&c), ["10.1.2.3:8080/v1/mcp", "10.1.2.3:9000/v1/mcp"]);
        let c = candidates(
            &running(
                serde_json::json!({"mcp-scout.io/scan": "true"}),
                ports.clone(),
            ),
            &spec,
        )
        .unwrap();
        assert_eq!(addrs(&c), ["10.1.2.3:8080", "10.1.2.3:9000"]);
        let all = PodsSpec {
            all_ports: true,
            ..PodsSpec::default()
        };
        let c = candidates(&running(serde_json::json!({}), ports), &all).unwrap();
        assert_eq!(addrs(&c), ["10.1.2.3:8080", "10.1.2.3:9000"]);
    }

    #[test]
    fn only_running_pods_with_an_ip_count() {
        let mut p = running(
            serde_json::json!({}),
            serde_json::json!([{"name": "mcp", "containerPort": 8000}]),
        );
        assert_eq!(candidates(&p, &PodsSpec::default()).unwrap().len(), 1);
        p.status.as_mut().unwrap().phase = Some("Pending".into());
        assert!(candidates(&p, &PodsSpec::default()).unwrap().is_empty());
        p.status.as_mut().unwrap().phase = Some("Running".into());
        p.status.as_mut().unwrap().pod_ip = None;
        assert!(candidates(&p, &PodsSpec::default()).unwrap().is_empty());
    }

    #[test]
    fn malformed_annotations_name_pod_and_annotation() {
        let ports = serde_json::json!([{"name": "mcp", "containerPort": 8000}]);
        let cases = [
            (
                serde_json::json!({"mcp-scout.io/scan": "yes"}),
                "pod ns/a: annotation mcp-scout.io/scan=\"yes\" is not \"true\" or \"false\"",
            ),
            (
                serde_json::json!({"mcp-scout.io/scan": "true", "mcp-scout.io/port": "nope"}),
                "pod ns/a: annotation mcp-scout.io/port=\"nope\" is neither a port number",
            ),
            (
                serde_json::json!({"mcp-scout.io/scan": "true", "mcp-scout.io/port": "70000"}),
                "annotation mcp-scout.io/port=\"70000\"",
            ),
            (
                serde_json::json!({"mcp-scout.io/path": "mcp"}),
                "pod ns/a: annotation mcp-scout.io/path=\"mcp\" is not a URL path",
            ),
        ];
        for (notes, want) in cases {
            let e = candidates(&running(notes, ports.clone()), &PodsSpec::default()).unwrap_err();
            assert!(e.to_string().contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn the_tracker_sends_differences_and_warns_once() {
        let spec = PodsSpec::default();
        let mut t = Tracker::default();
        let mut out = Vec::new();
        let mut p = running(
            serde_json::json!({}),
            serde_json::json!([{"name": "mcp", "containerPort": 8000}]),
        );
        t.apply(&p, &spec, &mut out);
        assert!(matches!(out.as_slice(), [PodEvent::Appeared(_)]));
        out.clear();
        t.apply(&p, &spec, &mut out);
        assert!(out.is_empty(), "an unchanged pod sends nothing");
        p.status.as_mut().unwrap().phase = Some("Failed".into());
        t.apply(&p, &spec, &mut out);
        match out.as_slice() {
            [PodEvent::Gone { reason, .. }] => {
                assert_eq!(reason, "pod ns/a is Failed, no longer Running")
            }
            other => panic!("{other:?}"),
        }
        out.clear();
        p.status.as_mut().unwrap().phase = Some("Running".into());
        t.apply(&p, &spec, &mut out);
        out.clear();
        t.relisting.insert(0, HashSet::new());
        t.relisted(0, None, &mut out);
        assert!(matches!(out.as_slice(), [PodEvent::Gone { .. }]), "{out:?}");
        out.clear();
        p.metadata.annotations = Some([(ANNOTATION_SCAN.to_string(), "maybe".to_string())].into());
        t.apply(&p, &spec, &mut out);
        t.apply(&p, &spec, &mut out);
        assert!(out.is_empty());
        assert_eq!(t.warned.len(), 1);
    }
}
