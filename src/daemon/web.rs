//! The web dashboard: a read-only page served at `/` on the API port, its assets at
//! `/assets/{name}`, all embedded in the binary (`include_str!` of `src/daemon/web/`).
//!
//! No CDN and no build step: clusters are often air-gapped, and building the project needs
//! no JavaScript toolchain. The page is plain HTML, CSS and one script that reads the same
//! `/api/v1` a client does (see `api.rs`); the routes here sit behind the same read check,
//! which also accepts HTTP Basic auth with the read token as the password, since a browser
//! cannot attach a bearer token to a page load.
//!
//! Every answer carries a strict Content-Security-Policy ([`CSP`]: scripts, styles and
//! connections only from this origin, no inline script or style, no framing), `nosniff`
//! and `Referrer-Policy: no-referrer`. The script inserts every string a server sent as
//! text (`textContent`, never HTML), so a hostile tool description cannot run code; the
//! policy is the second wall. Assets carry an `ETag` (a hash of their bytes) and
//! `Cache-Control: no-cache`: the browser keeps them and revalidates with one 304.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::api::AppState;

/// The page's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file the page uses; `/` is `index.html`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("web/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("web/app.css"),
    },
];

/// Each asset's ETag, in [`ASSETS`] order (a quoted prefix of its SHA-256).
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let d = Sha256::digest(a.body.as_bytes());
            let hex: String = d.iter().take(12).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

/// The dashboard's routes (the caller adds the read check).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve("index.html", &h) }),
        )
        .route(
            "/assets/{name}",
            get(|Path(name): Path<String>, h: HeaderMap| async move { serve(&name, &h) }),
        )
}

/// The asset `name`, or a 304 when the browser holds this version, or a 404.
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return super::api::error(
            StatusCode::NOT_FOUND,
            format!("no asset {name:?}; the dashboard is at /"),
        );
    };
    let asset = &ASSETS[i];
    let etag = &ETAGS[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = ASSETS[0].body;
        assert!(!page.contains("<style"), "inline <style> in index.html");
        assert!(!page.contains(" style="), "a style attribute in index.html");
        for (i, _) in page.match_indices("<script") {
            let tag = &page[i..page[i..].find('>').map_or(page.len(), |e| i + e)];
            assert!(tag.contains("src="), "an inline script: {tag}");
        }
        for (i, _) in page.match_indices(" on") {
            let word: String = page[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let after = page[i + 1 + word.len()..].chars().next();
            assert!(
                after != Some('='),
                "an inline event handler in index.html: {word}"
            );
        }
    }

    #[test]
    fn the_script_never_writes_html() {
        let js = ASSETS[1].body;
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(bad), "app.js uses {bad}");
        }
    }

    #[test]
    fn a_matching_etag_is_a_304_with_the_same_headers() {
        let r = serve("app.css", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag.clone());
        let r = serve("app.css", &h);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], etag);
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(serve("../x", &h).status(), StatusCode::NOT_FOUND);
    }
}
