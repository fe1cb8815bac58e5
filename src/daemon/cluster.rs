//! The daemon's view of its DaemonSet: whether this pod leads (`owner: leader` jobs) and who
//! its peers are (`shard: auto` jobs), both from the `kubernetes:` section.
//!
//! Lazy: the Lease elector ([`crate::kube::lease`]) starts when the first `owner: leader` job
//! asks for leadership, so a daemon with no such job never writes a Lease (and needs no RBAC
//! for one). The API client is built once, on first use; a failure to build it (no
//! credentials) is logged, and this pod then never leads and `shard: auto` runs fail with
//! that reason: the daemon itself keeps running. The `kubernetes:` section is read at start;
//! its changes take effect after a restart.
//!
//! Shutdown: [`Cluster::stop`] ends the elector, which releases the Lease when held, after the
//! jobs have stopped, so the next pod takes over at its next read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{watch, OnceCell};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::kube::lease::{self, ElectorOptions, KubeLeases};
use crate::kube::peers::{self, PeersError, ShardMembers};
use crate::kube::KubePlan;

/// Leadership and membership for the jobs of one daemon.
pub struct Cluster {
    plan: KubePlan,
    client: OnceCell<Result<kube::Client, String>>,
    leader_tx: watch::Sender<bool>,
    elector: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    gauge: Gauge,
}

impl Cluster {
    /// A cluster view for `plan`; `gauge` is `mcp_scout_leader`.
    pub fn new(plan: KubePlan, gauge: Gauge) -> Arc<Self> {
        Arc::new(Self {
            plan,
            client: OnceCell::new(),
            leader_tx: watch::channel(false).0,
            elector: Mutex::new(None),
            stop: CancellationToken::new(),
            gauge,
        })
    }

    /// This pod's name.
    pub fn me(&self) -> &str {
        &self.plan.pod
    }

    /// `namespace/name` of the Lease.
    pub fn lease_name(&self) -> String {
        format!("{}/{}", self.plan.namespace, self.plan.lease.name)
    }

    async fn client(&self) -> Result<kube::Client, String> {
        self.client
            .get_or_init(|| async {
                crate::kube::client(&self.plan).await.map_err(|e| {
                    tracing::error!("kubernetes: {e}");
                    e.to_string()
                })
            })
            .await
            .clone()
    }

    /// Whether this pod holds the Lease, as it changes; starts the elector on first call.
    pub fn leader(self: &Arc<Self>) -> watch::Receiver<bool> {
        let mut slot = self
            .elector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() && !self.stop.is_cancelled() {
            let this = self.clone();
            *slot = Some(tokio::spawn(async move { this.elect().await }));
        }
        self.leader_tx.subscribe()
    }

    async fn elect(self: Arc<Self>) {
        let client = tokio::select! {
            c = self.client() => c,
            () = self.stop.cancelled() => return,
        };
        let Ok(client) = client else {
            tracing::error!(
                "leader: no Kubernetes client; owner: leader jobs never run on this pod"
            );
            return;
        };
        let p = &self.plan;
        let api = Arc::new(KubeLeases::new(client, &p.namespace, &p.lease.name));
        let opts = ElectorOptions {
            me: p.pod.clone(),
            duration: p.lease.duration,
            renew: p.lease.renew,
            timeout: p.timeout,
            retry: (p.retry_initial, p.retry_max),
            lease: self.lease_name(),
        };
        // Mirror leadership into the gauge.
        let mut rx = self.leader_tx.subscribe();
        let gauge = self.gauge.clone();
        let mirror = tokio::spawn(async move {
            loop {
                gauge.set(i64::from(*rx.borrow_and_update()));
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
        lease::run(api, opts, self.leader_tx.clone(), self.stop.clone()).await;
        self.gauge.set(0);
        mirror.abort();
    }

    /// This run's members for `shard: auto` (read now, never cached).
    pub async fn members(&self) -> Result<ShardMembers, PeersError> {
        let client = self.client().await.map_err(PeersError::List)?;
        let p = &self.plan;
        let read = peers::members(client, &p.namespace, &p.peers, &p.pod);
        match tokio::time::timeout(p.timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(PeersError::List(format!(
                "list pods in the namespace {:?}: no answer within {:?} (kubernetes.timeout)",
                p.namespace, p.timeout
            ))),
        }
    }

    /// Stop the elector (releasing the Lease when held), waiting at most `limit`.
    pub async fn stop(&self, limit: Duration) {
        self.stop.cancel();
        let task = self
            .elector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            if tokio::time::timeout(limit, t).await.is_err() {
                tracing::warn!("leader: the Lease was not released within {limit:?}");
            }
        }
    }
}
