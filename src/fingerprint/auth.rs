//! Authorization-protected endpoints: a 401 whose RFC 9728 challenge names a protected
//! resource metadata document.
//!
//! RFC 9728 is not MCP-only, so the challenge alone is not enough: the metadata document is
//! fetched (same origin only: the scope wall holds for URLs a server hands us) and its
//! `resource` must name the probed URL. Corroborated, the endpoint is `mcp-auth-required`;
//! otherwise it is `mcp-likely` at best. A bare 401 is weak evidence and nothing more.
//!
//! An uncorroborated challenge is then tested for reach: the same POST goes to a random path
//! that no server serves MCP on. If that path is challenged too, the wall covers the whole
//! host (an OAuth API, an API-key proxy) and says nothing about MCP: the verdict is `http`
//! with `auth.required` true. The answer is kept per endpoint, so six paths cost one extra
//! request. `auth.resource_metadata` holds only a URL the server itself gave: the challenge's
//! parameter, or the well-known location when a metadata document was served there.

use serde_json::Value;
use url::Url;

use super::http::Request;
use super::streamable::{headers, initialize};
use super::www_auth;
use super::{AuthInfo, Ctx, PathOutcome};

/// Where RFC 9728 puts the metadata of `resource` when the challenge does not say.
fn well_known(resource: &Url) -> Url {
    let mut u = resource.clone();
    let path = resource.path().trim_end_matches('/');
    u.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
    u.set_query(None);
    u
}

/// Whether the metadata's `resource` names the probed URL (trailing slashes aside, or a
/// prefix of it on the same origin).
fn corroborates(resource: &str, probed: &Url) -> bool {
    let Ok(r) = Url::parse(resource) else {
        return false;
    };
    let norm = |u: &Url| {
        format!(
            "{}{}",
            u.origin().ascii_serialization(),
            u.path().trim_end_matches('/')
        )
    };
    let (r, p) = (norm(&r), norm(probed));
    p == r || p.starts_with(&format!("{r}/"))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .take(32)
                .collect()
        })
        .unwrap_or_default()
}

/// Judge a 401 on `url` from its `WWW-Authenticate` values.
pub(crate) async fn challenge(ctx: &mut Ctx<'_>, url: &Url, www: &[String]) -> PathOutcome {
    let refs: Vec<&str> = www.iter().map(String::as_str).collect();
    let Some(bearer) = www_auth::bearer(&refs) else {
        ctx.evidence.push(format!(
            "{}: 401 without a Bearer challenge ({}) (weak)",
            url.path(),
            if www.is_empty() {
                "no WWW-Authenticate".to_string()
            } else {
                format!("{:?}", www)
            }
        ));
        return PathOutcome::Nothing;
    };
    let mut auth = AuthInfo {
        required: true,
        scopes: bearer
            .scope
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        ..AuthInfo::default()
    };
    let named = bearer.resource_metadata.is_some();
    // The wall is already known host-wide and this challenge names no metadata: nothing
    // more to learn from this path.
    if ctx.wall == Some(true) && !named {
        return PathOutcome::AuthWall { auth };
    }
    let meta_url = match bearer.resource_metadata.as_deref() {
        Some(m) => match url.join(m) {
            Ok(u) => u,
            Err(_) => {
                ctx.evidence.push(format!(
                    "{}: resource_metadata {m:?} is not a URL",
                    url.path()
                ));
                return uncorroborated(ctx, url, auth).await;
            }
        },
        None => well_known(url),
    };
    if named {
        auth.resource_metadata = Some(meta_url.to_string());
    }
    if !ctx.same_origin(&meta_url) {
        ctx.evidence.push(format!(
            "{}: 401 Bearer challenge; metadata at {meta_url} is off-host, not fetched",
            url.path()
        ));
        return uncorroborated(ctx, url, auth).await;
    }
    let req =
        Request::new(reqwest::Method::GET, meta_url.clone()).header("accept", "application/json");
    let Some(r) = ctx
        .send(
            &format!("GET {} (RFC 9728 metadata)", meta_url.path()),
            &req,
        )
        .await
    else {
        return uncorroborated(ctx, url, auth).await;
    };
    let doc: Value = if r.status == 200 {
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let resource = doc
        .get("resource")
        .and_then(Value::as_str)
        .map(str::to_string);
    auth.authorization_servers = strings(&doc, "authorization_servers");
    let scopes = strings(&doc, "scopes_supported");
    if !scopes.is_empty() {
        auth.scopes = scopes;
    }
    auth.resource.clone_from(&resource);
    if resource.is_some() && !named {
        // Not in the challenge, but served at the well-known location: the server named it.
        auth.resource_metadata = Some(meta_url.to_string());
    }
    let corroborated = resource
        .as_deref()
        .is_some_and(|res| corroborates(res, url));
    ctx.evidence.push(if corroborated {
        format!(
            "{}: 401 with an RFC 9728 challenge; its metadata names this resource ({})",
            url.path(),
            resource.unwrap_or_default()
        )
    } else if let Some(other) = resource {
        format!(
            "{}: 401 with a Bearer challenge, but its metadata names another resource ({other})",
            url.path()
        )
    } else {
        format!(
            "{}: 401 with a Bearer challenge, but no metadata document names this resource (GET {} answered {})",
            url.path(),
            meta_url.path(),
            r.status
        )
    });
    if corroborated {
        return PathOutcome::AuthRequired {
            url: url.clone(),
            auth,
            corroborated,
        };
    }
    uncorroborated(ctx, url, auth).await
}

/// A challenge whose metadata does not name this resource: a host-wide wall when a path
/// that cannot be MCP is challenged too, else a weak `mcp-likely`.
async fn uncorroborated(ctx: &mut Ctx<'_>, url: &Url, auth: AuthInfo) -> PathOutcome {
    let wall = match ctx.wall {
        Some(w) => w,
        None => {
            let w = challenged_elsewhere(ctx).await;
            ctx.wall = Some(w);
            if w {
                ctx.evidence.push(format!(
                    "a random path got a 401 Bearer challenge like {}",
                    url.path()
                ));
            }
            w
        }
    };
    if wall {
        PathOutcome::AuthWall { auth }
    } else {
        PathOutcome::AuthRequired {
            url: url.clone(),
            auth,
            corroborated: false,
        }
    }
}

/// A path no MCP server serves: random, so a server cannot special-case it.
fn random_path() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    format!("/scout-wall-check-{:016x}", h.finish())
}

/// POST the same `initialize` to a random path: does it meet a Bearer challenge too?
async fn challenged_elsewhere(ctx: &mut Ctx<'_>) -> bool {
    let path = random_path();
    let url = ctx.url(&path);
    let id = ctx.next_id();
    let req = headers(
        Request::new(reqwest::Method::POST, url).json(&initialize(id)),
        None,
        None,
    );
    let Some(r) = ctx
        .send(
            &format!("POST {path} initialize (is the challenge host-wide?)"),
            &req,
        )
        .await
    else {
        return false;
    };
    let www: Vec<&str> = r.header_all("www-authenticate");
    r.status == 401 && www_auth::bearer(&www).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_inserts_before_the_path() {
        let u = Url::parse("http://10.0.0.1:8000/mcp").unwrap();
        assert_eq!(
            well_known(&u).as_str(),
            "http://10.0.0.1:8000/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn resource_must_name_the_probed_url() {
        let p = Url::parse("http://10.0.0.1:8000/mcp").unwrap();
        assert!(corroborates("http://10.0.0.1:8000/mcp", &p));
        assert!(corroborates("http://10.0.0.1:8000/mcp/", &p));
        assert!(corroborates("http://10.0.0.1:8000", &p));
        assert!(!corroborates("http://10.0.0.1:8000/other", &p));
        assert!(!corroborates("https://mcp.example.com/mcp", &p));
        assert!(!corroborates("not a url", &p));
    }
}
