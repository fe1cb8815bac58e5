//! `scan --push TYPE=TARGET`: register what one scan found, once, without an outbox.
//!
//! The same sink types as the daemon's, built with every default, each given the scan's
//! confirmed servers (`mcp`, `mcp-auth-required`, as a sink's default `only:`) through
//! [`super::Sink::put_all`] and one flush. Nothing is removed: a one-shot push knows
//! nothing of what earlier pushes wrote.
//!
//! Accepted forms: `mcp-mesh=URL`, `kailash-file=PATH`, `etcd=URL[,URL…]`,
//! `server-json=DIR`, `consul=URL`, `webhook=URL` (one `appeared` event per server).
//! ContextForge needs a token: use the daemon's `sinks:`.

use std::future::Future;
use std::pin::Pin;

use super::plan::{SinkPlan, DEFAULT_ETCD_PREFIX};
use super::{build, Sink, SinkError, SinkKind, Visitor};
use crate::store::{Change, ChangeKind, StoredServer};

/// The types `--push` accepts.
pub const PUSH_TYPES: [&str; 6] = [
    "mcp-mesh",
    "kailash-file",
    "etcd",
    "server-json",
    "consul",
    "webhook",
];

/// A `--push` value that cannot be used (exit 2 before scanning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--push {value:?}: {reason}")]
pub struct PushSpecError {
    /// The value given.
    pub value: String,
    /// What is wrong and the fix.
    pub reason: String,
}

/// Parse one `--push TYPE=TARGET`.
pub fn parse(value: &str) -> Result<SinkPlan, PushSpecError> {
    let fail = |reason: String| PushSpecError {
        value: value.into(),
        reason,
    };
    let Some((kind, target)) = value.split_once('=') else {
        return Err(fail(format!(
            "expected TYPE=TARGET, such as kailash-file=/etc/mcp/servers.json or mcp-mesh=http://registry:8000; types: {}",
            PUSH_TYPES.join(", ")
        )));
    };
    let target = target.trim();
    if target.is_empty() {
        return Err(fail(format!("no target after {kind}=")));
    }
    let url = |t: &str| -> Result<url::Url, PushSpecError> {
        match url::Url::parse(t) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
            _ => Err(fail(format!(
                "{t:?} is not an http:// or https:// URL with a host, such as http://127.0.0.1:8000"
            ))),
        }
    };
    let sink = match kind.trim() {
        "mcp-mesh" => SinkKind::Mesh {
            url: url(target)?,
            namespace: super::plan::DEFAULT_MESH_NAMESPACE.into(),
            heartbeat: super::plan::DEFAULT_MESH_HEARTBEAT,
        },
        "kailash-file" => SinkKind::KailashFile {
            path: target.into(),
            refresh: super::plan::DEFAULT_KAILASH_REFRESH,
        },
        "etcd" => SinkKind::Etcd {
            endpoints: target.split(',').map(|t| url(t.trim())).collect::<Result<_, _>>()?,
            prefix: DEFAULT_ETCD_PREFIX.into(),
            // Zero: no lease. A push has no daemon to keep one alive, so its entries would
            // vanish a minute later; they stay until deleted instead.
            lease_ttl: std::time::Duration::ZERO,
            user: None,
        },
        "server-json" => SinkKind::ServerJson { dir: target.into() },
        "consul" => SinkKind::Consul {
            url: url(target)?,
            token: None,
            ttl: super::plan::DEFAULT_CONSUL_TTL,
        },
        "webhook" => SinkKind::Webhook {
            url: url(target)?,
            secret: None,
            headers: Vec::new(),
        },
        "contextforge" => {
            return Err(fail(
                "a ContextForge push needs a token; configure a contextforge sink in the daemon's sinks: instead".into(),
            ))
        }
        other => {
            return Err(fail(format!(
                "{other:?} is not a push type; accepted: {}",
                PUSH_TYPES.join(", ")
            )))
        }
    };
    Ok(SinkPlan::with_defaults(kind.trim(), sink))
}

/// What one push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `TYPE TARGET`.
    pub to: String,
    /// Servers pushed.
    pub servers: usize,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

type PushFuture = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

struct Once {
    servers: Vec<StoredServer>,
}

impl Visitor for Once {
    type Out = PushFuture;
    fn visit<S: Sink>(self, mut sink: S, plan: SinkPlan) -> PushFuture {
        Box::pin(async move {
            let servers: Vec<StoredServer> = self
                .servers
                .into_iter()
                .filter(|s| plan.only.matches(s) && sink.wants(s) == super::Wanted::Yes)
                .collect();
            if sink.reconciles() {
                sink.put_all(&servers).await?;
            } else {
                for (i, s) in servers.iter().enumerate() {
                    let change = Change {
                        seq: i as i64 + 1,
                        at: s.last_seen.clone(),
                        server_id: s.id.as_str().to_string(),
                        kind: ChangeKind::Appeared,
                        detail: serde_json::json!({"reason": "new"}),
                    };
                    sink.deliver(&change, Some(s), true).await?;
                }
            }
            sink.flush().await
        })
    }
}

/// Push `servers` through `plan`'s sink once.
pub async fn push(plan: SinkPlan, servers: &[StoredServer]) -> Pushed {
    let to = format!("{} {}", plan.kind.type_name(), plan.kind.target());
    let count = servers.iter().filter(|s| plan.only.matches(s)).count();
    let result = match build(
        plan,
        Once {
            servers: servers.to_vec(),
        },
    ) {
        Ok(f) => f.await,
        Err(e) => Err(e),
    };
    Pushed {
        to,
        servers: count,
        error: result.err().map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_values_parse_or_name_the_fix() {
        let p = parse("kailash-file=/etc/mcp/servers.json").unwrap();
        assert_eq!(p.kind.type_name(), "kailash-file");
        let p = parse("etcd=http://127.0.0.1:2379,http://127.0.0.2:2379").unwrap();
        assert!(matches!(p.kind, SinkKind::Etcd { ref endpoints, .. } if endpoints.len() == 2));
        assert_eq!(
            parse("mesh").unwrap_err().to_string(),
            "--push \"mesh\": expected TYPE=TARGET, such as kailash-file=/etc/mcp/servers.json or mcp-mesh=http://registry:8000; types: mcp-mesh, kailash-file, etcd, server-json, consul, webhook"
        );
        assert!(parse("mcp-mesh=registry:8000")
            .unwrap_err()
            .to_string()
            .contains("is not an http:// or https:// URL"));
        assert!(parse("nope=x")
            .unwrap_err()
            .to_string()
            .contains("\"nope\" is not a push type"));
        assert!(parse("contextforge=http://g:1")
            .unwrap_err()
            .to_string()
            .contains("needs a token"));
        assert!(parse("server-json=")
            .unwrap_err()
            .to_string()
            .contains("no target"));
    }
}
