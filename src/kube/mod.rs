//! The Kubernetes side of the daemon: the typed `kubernetes:` plan and the API client built
//! from it. The sources live beside it: [`pods`] (the node-local pod watcher → candidates);
//! leader election and `shard: auto` peers are separate files of this module.
//!
//! **Which credentials.** `kubernetes.kubeconfig: null` means, in order: the in-cluster
//! service account when `KUBERNETES_SERVICE_HOST` is set (a pod), else `$KUBECONFIG`, else
//! `~/.kube/config`; a path reads that kubeconfig file only. Building the client reads files
//! but sends nothing, so an unreachable API server is found by the first request (the pod
//! watcher reports it on `/readyz` and retries), never at start.
//!
//! **Timeouts.** `kubernetes.timeout` bounds connecting and writing one request. Reads keep
//! kube's own read timeout (295 s), above the watches' server-side 290 s, because a watch is
//! a response that stays open by design: a short read timeout would cut every quiet watch.

pub mod lease;
pub mod peers;
pub mod pods;

use std::path::PathBuf;
use std::time::Duration;

/// Default deadline of one API request (watches excepted).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default first back-off while the API server is unreachable.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Default longest back-off.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);
/// Default namespace of the Lease and of this DaemonSet's pods.
pub const DEFAULT_NAMESPACE: &str = "mcp-scout";
/// Default label selector of this DaemonSet's pods (`shard: auto`).
pub const DEFAULT_PEERS: &str = "app.kubernetes.io/name=mcp-scout";
/// Default Lease name.
pub const DEFAULT_LEASE_NAME: &str = "mcp-scout-leader";
/// Default Lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Default Lease renew period.
pub const DEFAULT_LEASE_RENEW: Duration = Duration::from_secs(5);

/// The Lease used for `owner: leader` jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasePlan {
    /// Lease object name.
    pub name: String,
    /// How long a holder keeps the Lease without renewing.
    pub duration: Duration,
    /// How often the holder renews (below `duration`).
    pub renew: Duration,
}

/// The validated `kubernetes:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubePlan {
    /// An explicit kubeconfig file; `None`: in-cluster, else `$KUBECONFIG`, else
    /// `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// This pod's node name (records carry it as `node`); `None` when unset.
    pub node: Option<String>,
    /// Namespace of the Lease and of this DaemonSet's pods.
    pub namespace: String,
    /// This pod's name (Lease holder identity, shard member).
    pub pod: String,
    /// Label selector of this DaemonSet's pods.
    pub peers: String,
    /// Leader election.
    pub lease: LeasePlan,
    /// Deadline of one request (watches excepted).
    pub timeout: Duration,
    /// First back-off while the API is unreachable.
    pub retry_initial: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
}

impl Default for KubePlan {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            node: None,
            namespace: DEFAULT_NAMESPACE.to_string(),
            pod: default_pod_name(),
            peers: DEFAULT_PEERS.to_string(),
            lease: LeasePlan {
                name: DEFAULT_LEASE_NAME.to_string(),
                duration: DEFAULT_LEASE_DURATION,
                renew: DEFAULT_LEASE_RENEW,
            },
            timeout: DEFAULT_TIMEOUT,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
        }
    }
}

impl KubePlan {
    /// One line for `config check`.
    pub fn describe(&self) -> String {
        format!(
            "kubernetes: {}, node {}, pod {} in namespace {}, peers {}, lease {} ({} / renew {}), request timeout {}, retry {}..{}",
            match &self.kubeconfig {
                Some(p) => format!("kubeconfig {}", p.display()),
                None => "in-cluster service account, else $KUBECONFIG, else ~/.kube/config".into(),
            },
            self.node.as_deref().unwrap_or("(unset)"),
            self.pod,
            self.namespace,
            self.peers,
            self.lease.name,
            crate::units::format_duration(self.lease.duration),
            crate::units::format_duration(self.lease.renew),
            crate::units::format_duration(self.timeout),
            crate::units::format_duration(self.retry_initial),
            crate::units::format_duration(self.retry_max),
        )
    }
}

/// This pod's name when `kubernetes.pod` is empty: the host name (a pod's host name is its
/// name), else `mcp-scout`.
pub fn default_pod_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mcp-scout".to_string())
}

/// The API client could not be configured (no request was sent yet).
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// `kubernetes.kubeconfig` names a file that cannot be read or parsed.
    #[error("kubernetes.kubeconfig {}: {source}; check the path, or set kubeconfig: null to use the in-cluster service account", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ::kube::config::KubeconfigError,
    },
    /// In a pod, but the service account files are missing.
    #[error("in-cluster config (KUBERNETES_SERVICE_HOST is set): {0}; mount the service account token (automountServiceAccountToken: true)")]
    InCluster(#[source] ::kube::config::InClusterError),
    /// Not in a pod and no kubeconfig found.
    #[error("no Kubernetes credentials: not in a pod (KUBERNETES_SERVICE_HOST unset) and no kubeconfig ($KUBECONFIG or ~/.kube/config): {0}; set kubernetes.kubeconfig to a file")]
    NoConfig(#[source] ::kube::config::KubeconfigError),
    /// The client could not be built from the config (TLS, proxy, auth plugin).
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] ::kube::Error),
}

/// Build the client the plan asks for. Sends nothing.
pub async fn client(plan: &KubePlan) -> Result<::kube::Client, KubeError> {
    let mut config = match &plan.kubeconfig {
        Some(path) => {
            let kc = ::kube::config::Kubeconfig::read_from(path).map_err(|source| {
                KubeError::Kubeconfig {
                    path: path.clone(),
                    source,
                }
            })?;
            ::kube::Config::from_custom_kubeconfig(
                kc,
                &::kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|source| KubeError::Kubeconfig {
                path: path.clone(),
                source,
            })?
        }
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            ::kube::Config::incluster().map_err(KubeError::InCluster)?
        }
        None => ::kube::Config::from_kubeconfig(&::kube::config::KubeConfigOptions::default())
            .await
            .map_err(KubeError::NoConfig)?,
    };
    config.connect_timeout = Some(plan.timeout);
    config.write_timeout = Some(plan.timeout);
    ::kube::Client::try_from(config).map_err(KubeError::Client)
}

/// What a failed API request means for the user: a 403 names the permission to grant, other
/// failures name the server and that the watcher retries.
pub fn explain(verb: &str, resource: &str, scope: &str, e: &::kube::Error) -> String {
    match e {
        ::kube::Error::Api(s) if s.is_forbidden() => format!(
            "{verb} {resource} {scope}: forbidden; the ServiceAccount needs a {} with verb {verb} on {resource} (the API server said: {})",
            if scope.starts_with("at cluster") { "ClusterRole (and ClusterRoleBinding)" } else { "Role or ClusterRole bound in that namespace" },
            s.message
        ),
        ::kube::Error::Api(s) => format!("{verb} {resource} {scope}: the API server answered {} {}: {}", s.code, s.reason, s.message),
        other => format!("{verb} {resource} {scope}: cannot reach the Kubernetes API: {other}"),
    }
}
