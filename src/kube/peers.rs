//! `shard: auto`: the ready pods of this DaemonSet, and which of them owns each address.
//!
//! Membership is read from the API at the start of each run of a `shard: auto` job (the pods
//! in `kubernetes.namespace` matching `kubernetes.peers` that are Running, Ready and not being
//! deleted), never cached between runs: a node that joins or leaves changes the split from
//! the next run on.
//!
//! The split is rendezvous (highest random weight) hashing: an address belongs to the pod
//! whose `weight(pod, address)` is highest. Every pod computes the same owner from the same
//! list, with no coordination, so the shares never overlap and always cover the targets; a
//! pod leaving moves only the addresses it owned (each to its own runner-up), and a pod
//! joining takes about 1/N of the addresses, from every other pod alike. The weight is the
//! project's one stable hash ([`crate::hash`]) with a 64-bit finaliser, so the split
//! survives restarts and upgrades.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::hash::Fnv1a;
use crate::target::{AddrRange, TargetSet};

/// Addresses split per run at most: a `shard: auto` job is also bounded by max_targets;
/// this keeps the per-address hashing bounded whatever `force` says.
pub const MAX_SHARDED_ADDRESSES: u64 = 1 << 24;

/// This run's members: this pod and every ready pod of the DaemonSet (this one included
/// when it is ready), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMembers {
    /// This pod's name (`kubernetes.pod`).
    pub me: String,
    /// The ready pods' names, sorted and deduplicated.
    pub pods: Vec<String>,
}

/// Why the split could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The pod list failed (the message says which permission or why).
    #[error("shard: auto: {0}; the run is skipped rather than sweep addresses another pod owns")]
    List(String),
    /// More addresses than [`MAX_SHARDED_ADDRESSES`].
    #[error("shard: auto splits at most {MAX_SHARDED_ADDRESSES} addresses per run, and this job has {0}; narrow the targets")]
    TooMany(u64),
}

/// Rendezvous weight of `addr` for `pod`: FNV-1a of the pod name, a separator and the
/// address bytes, through the splitmix64 finaliser (FNV alone varies little in its high
/// bits for inputs that differ in their last byte, and the comparison is on the whole word).
pub fn weight(pod: &str, addr: IpAddr) -> u64 {
    let mut h = Fnv1a::new();
    h.write(pod.as_bytes());
    h.write(&[0]);
    match addr {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pod that owns `addr`: the highest weight, ties to the smaller name. `None` when there
/// are no pods.
pub fn owner(pods: &[String], addr: IpAddr) -> Option<&str> {
    pods.iter()
        .map(|p| (weight(p, addr), std::cmp::Reverse(p.as_str())))
        .max()
        .map(|(_, std::cmp::Reverse(p))| p)
}

impl ShardMembers {
    /// The addresses of `targets` this pod owns (none when it is not among the ready pods).
    pub fn share(&self, targets: &TargetSet) -> Result<TargetSet, PeersError> {
        if targets.len() > MAX_SHARDED_ADDRESSES {
            return Err(PeersError::TooMany(targets.len()));
        }
        let mut mine: Vec<AddrRange> = Vec::new();
        for i in 0..targets.len() {
            let a = targets.addr(i);
            if owner(&self.pods, a) == Some(self.me.as_str()) {
                mine.push(AddrRange::new(a, a));
            }
        }
        Ok(TargetSet::new(mine, Vec::new()))
    }
}

/// Whether `p` counts as a member: Running, condition Ready true, not being deleted.
pub fn is_ready(p: &Pod) -> bool {
    if p.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(st) = &p.status else {
        return false;
    };
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Read this run's members: the ready pods matching `selector` in `namespace`.
pub async fn members(
    client: kube::Client,
    namespace: &str,
    selector: &str,
    me: &str,
) -> Result<ShardMembers, PeersError> {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| {
            PeersError::List(super::explain(
                "list",
                "pods",
                &format!("in the namespace {namespace:?} (selector {selector:?})"),
                &e,
            ))
        })?;
    let mut pods: Vec<String> = list
        .items
        .iter()
        .filter(|p| is_ready(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    pods.sort();
    pods.dedup();
    Ok(ShardMembers {
        me: me.to_string(),
        pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn set(ranges: &[(&str, &str)]) -> TargetSet {
        TargetSet::new(
            ranges
                .iter()
                .map(|(a, b)| AddrRange::new(a.parse().unwrap(), b.parse().unwrap()))
                .collect(),
            Vec::new(),
        )
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("mcp-scout-{i:05x}")).collect()
    }

    fn shares(pods: &[String], t: &TargetSet) -> Vec<TargetSet> {
        pods.iter()
            .map(|me| {
                ShardMembers {
                    me: me.clone(),
                    pods: pods.to_vec(),
                }
                .share(t)
                .unwrap()
            })
            .collect()
    }

    fn addrs(t: &TargetSet) -> Vec<IpAddr> {
        (0..t.len()).map(|i| t.addr(i)).collect()
    }

    #[test]
    fn shares_never_overlap_and_cover_every_target() {
        let t = set(&[("10.20.0.0", "10.20.15.255"), ("fd00::1", "fd00::200")]);
        for n in [1, 2, 3, 5, 8] {
            let pods = names(n);
            let s = shares(&pods, &t);
            let mut seen: HashMap<IpAddr, usize> = HashMap::new();
            for (k, sh) in s.iter().enumerate() {
                for a in addrs(sh) {
                    assert!(
                        seen.insert(a, k).is_none(),
                        "{a} in two shares with {n} pods"
                    );
                }
            }
            assert_eq!(seen.len() as u64, t.len(), "{n} pods");
            // Balanced within 20 % of the mean (4,608 addresses).
            let mean = t.len() as f64 / n as f64;
            for sh in &s {
                let dev = (sh.len() as f64 - mean).abs() / mean;
                assert!(
                    dev < 0.2,
                    "{n} pods: a share of {} for a mean of {mean}",
                    sh.len()
                );
            }
        }
    }

    #[test]
    fn a_pod_leaving_moves_only_its_own_addresses_and_a_pod_joining_takes_a_fair_share() {
        let t = set(&[("10.20.0.0", "10.20.15.255")]);
        let before = names(4);
        let owners = |pods: &[String]| -> Vec<String> {
            addrs(&t)
                .into_iter()
                .map(|a| owner(pods, a).unwrap().to_string())
                .collect()
        };
        let o4 = owners(&before);
        let after: Vec<String> = before
            .iter()
            .filter(|p| *p != &before[2])
            .cloned()
            .collect();
        let o3 = owners(&after);
        for (x, y) in o4.iter().zip(&o3) {
            if x != &before[2] {
                assert_eq!(x, y, "an address of a staying pod moved");
            }
        }
        let mut joined = before.clone();
        joined.push("mcp-scout-new".into());
        let o5 = owners(&joined);
        let moved = o4.iter().zip(&o5).filter(|(x, y)| x != y).count();
        assert!(o4
            .iter()
            .zip(&o5)
            .all(|(x, y)| x == y || y == "mcp-scout-new"));
        let fair = t.len() as f64 / 5.0;
        assert!((moved as f64 - fair).abs() / fair < 0.2, "{moved} moved");
    }

    #[test]
    fn the_split_is_stable_and_independent_of_list_order() {
        let a: IpAddr = "10.20.3.4".parse().unwrap();
        let pods = names(3);
        let mut rev = pods.clone();
        rev.reverse();
        assert_eq!(owner(&pods, a), owner(&rev, a));
        // Pinned: the split must survive a rebuild (the hash is FNV-1a, not std's).
        assert_eq!(weight("mcp-scout-00000", a), 0xdfba_c686_c6bc_2361);
        assert_eq!(owner(&[], a), None);
        let outsider = ShardMembers {
            me: "not-ready".into(),
            pods,
        };
        assert!(outsider
            .share(&set(&[("10.0.0.0", "10.0.0.255")]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn readiness_needs_running_ready_and_not_deleting() {
        let pod = |phase: &str, ready: &str, deleting: bool| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "p",
                    "deletionTimestamp": if deleting { serde_json::json!("2026-01-01T00:00:00Z") } else { serde_json::Value::Null },
                },
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap()
        };
        assert!(is_ready(&pod("Running", "True", false)));
        assert!(!is_ready(&pod("Running", "False", false)));
        assert!(!is_ready(&pod("Pending", "True", false)));
        assert!(!is_ready(&pod("Running", "True", true)));
    }
}
