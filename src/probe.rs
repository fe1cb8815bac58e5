//! `mcp-scout probe`: fingerprint one endpoint and report every step.
//!
//! Glue like [`crate::scan`]: parses the target, checks the port answers at all, runs the
//! fingerprinter and hands the record to the writers. Its fingerprinting flags are validated
//! by the same [`crate::plan::FingerprintSpec`] that `scan` and the daemon use.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use tokio_util::sync::CancellationToken;

use crate::cli::{OutputFormat, ProbeArgs};
use crate::finding::{Origin, PortState, Record};
use crate::fingerprint::{Fingerprinter, ProbeTarget};
use crate::output::{report, ResultWriter, WriteError};

/// Forms accepted for a probe target, quoted in errors.
const ACCEPTED: &str = "accepted forms: http://10.0.0.5:8000/mcp, https://host.example/mcp, 10.0.0.5:8000, [::1]:8000, host.example:8000";

/// Why `probe` could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The target is malformed.
    #[error("invalid probe target {token:?}: {reason}; {ACCEPTED}")]
    Target {
        /// As typed.
        token: String,
        /// What is wrong.
        reason: String,
    },
    /// Bad fingerprinting settings.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// The hostname did not resolve.
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve {
        /// Host name.
        host: String,
        /// Resolver message.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] crate::fingerprint::http::ClientError),
    /// Output failed.
    #[error(transparent)]
    Write(WriteError),
}

/// A parsed probe target: host, port, scheme and path as named.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    host: String,
    port: u16,
    https: Option<bool>,
    path: Option<String>,
}

fn parse_target(t: &str) -> Result<Named, ProbeError> {
    let bad = |reason: &str| ProbeError::Target {
        token: t.to_string(),
        reason: reason.to_string(),
    };
    if let Some((scheme, rest)) = t.split_once("://") {
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let u = url::Url::parse(t).map_err(|e| bad(&e.to_string()))?;
        let host = u.host_str().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port_or_known_default().ok_or_else(|| bad("no port"))?;
        // A path is "named" only when the user typed one: `http://h:8000` walks the list.
        let path = rest.contains('/').then(|| {
            let mut p = u.path().to_string();
            if let Some(q) = u.query() {
                p.push('?');
                p.push_str(q);
            }
            p
        });
        return Ok(Named {
            host,
            port,
            https: Some(https),
            path,
        });
    }
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| bad("an IPv6 address needs brackets and a port: [::1]:8000"))?;
        (h.to_string(), p)
    } else {
        let (h, p) = t
            .rsplit_once(':')
            .ok_or_else(|| bad("a port is required"))?;
        if h.contains(':') {
            return Err(bad("an IPv6 address needs brackets: [::1]:8000"));
        }
        (h.to_string(), p)
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad("the port must be 1-65535"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(Named {
        host,
        port,
        https: None,
        path: None,
    })
}

/// `host` as an address (a literal, else the system resolver's first answer).
pub(crate) async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ProbeError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs =
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ProbeError::Resolve {
                host: host.to_string(),
                reason: e.to_string(),
            })?;
    addrs.next().ok_or_else(|| ProbeError::Resolve {
        host: host.to_string(),
        reason: "no addresses".into(),
    })
}

/// Run `mcp-scout probe`; returns whether the endpoint is (probably) an MCP server.
pub async fn run(args: ProbeArgs, shutdown: CancellationToken) -> Result<bool, ProbeError> {
    let named = parse_target(&args.target)?;
    let opts = args.fingerprint.spec().resolve()?;
    let addr = resolve(&named.host, named.port).await?;
    let base = crate::discover::tcp::connect_once(addr, opts.http.request_timeout).await;
    let state = base.state;
    let mut record = Record::from(&base);
    record.origins = vec![Origin::Static];
    let mut steps = vec![crate::fingerprint::Step {
        request: format!("TCP connect {addr}"),
        outcome: state.as_str().to_string(),
    }];
    if state == PortState::Open {
        let fp = Fingerprinter::new(opts)?;
        let target = ProbeTarget {
            addr,
            https: named.https,
            path: named.path.clone(),
            hint_path: None,
            // The user named this target: the given credentials may go to it.
            credentials: true,
        };
        let result = tokio::select! {
            r = fp.fingerprint(&target) => Some(r),
            () = shutdown.cancelled() => None,
        };
        if let Some(f) = result {
            steps.extend(f.steps.iter().cloned());
            record = record.with_fingerprint(f);
        }
    }
    let is_mcp = record.kind.is_some_and(|k| k.is_mcp());
    let out = std::io::stdout().lock();
    let res = match args.output {
        OutputFormat::Table => {
            let mut out = out;
            report::write_report(&mut out, &args.target, &steps, &record)
                .and_then(|()| out.flush())
                .map_err(WriteError::from)
        }
        format => {
            let mut w = ResultWriter::new(format.into(), out);
            w.push(record).and_then(|()| w.finish_single())
        }
    };
    match res {
        Ok(()) | Err(WriteError::Closed) => Ok(is_mcp),
        Err(e) => Err(ProbeError::Write(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_host_ports() {
        let n = parse_target("http://127.0.0.1:8000/mcp").unwrap();
        assert_eq!(
            (n.host.as_str(), n.port, n.https, n.path.as_deref()),
            ("127.0.0.1", 8000, Some(false), Some("/mcp"))
        );
        let n = parse_target("https://[::1]/x?y=1").unwrap();
        assert_eq!(
            (n.host.as_str(), n.port, n.path.as_deref()),
            ("::1", 443, Some("/x?y=1"))
        );
        let n = parse_target("http://10.0.0.1:3000").unwrap();
        assert_eq!(n.path, None, "no typed path: walk the list");
        let n = parse_target("[::1]:8000").unwrap();
        assert_eq!((n.host.as_str(), n.port, n.https), ("::1", 8000, None));
        let n = parse_target("db.lab:9000").unwrap();
        assert_eq!((n.host.as_str(), n.port), ("db.lab", 9000));
    }

    #[test]
    fn rejects_bad_targets_with_accepted_forms() {
        for t in [
            "ftp://h/x",
            "127.0.0.1",
            "::1:80",
            "h:0",
            "h:99999",
            ":80",
            "[::1]80",
        ] {
            let e = parse_target(t).unwrap_err().to_string();
            assert!(
                e.contains("accepted forms") && e.contains(&format!("{t:?}")),
                "{t}: {e}"
            );
        }
    }
}
