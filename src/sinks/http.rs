//! The HTTP client every HTTP sink shares: each request bounded in time (the sink's
//! `timeout`) and in body size ([`BODY_CAP`]), and each answer sorted into success,
//! transient (retried) or rejected (dead letter) the same way for every registry.
//!
//! A registry that answers HTML, an endless body, or nothing at all costs one bounded
//! request and an error that says which (the body is cut at the cap and never buffered
//! beyond it). Errors never carry request headers, so tokens cannot leak into logs.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::SinkError;

/// Most bytes of a registry's answer that are read; the rest is dropped.
pub const BODY_CAP: usize = 1024 * 1024;
/// Most bytes of an error body quoted in a message.
const QUOTE: usize = 200;
/// Connections kept idle per registry host.
const IDLE_PER_HOST: usize = 16;

/// A registry's answer, read up to [`BODY_CAP`].
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`, when sent.
    pub content_type: Option<String>,
    /// The body, cut at [`BODY_CAP`].
    pub body: Vec<u8>,
    /// Whether the body was longer than the cap.
    pub cut: bool,
    /// The cap it was read with.
    pub cap: usize,
}

impl Answer {
    /// The body as JSON, or an error that says what came instead (HTML, a cut body…).
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, SinkError> {
        if self.cut {
            return Err(SinkError::transient(format!(
                "{what}: the answer is longer than the {BODY_CAP}-byte cap; is this the registry?"
            )));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            SinkError::transient(format!(
                "{what}: the answer is not the expected JSON ({e}){}: {}",
                self.content_type
                    .as_deref()
                    .map(|c| format!(", content type {c}"))
                    .unwrap_or_default(),
                self.quote()
            ))
        })
    }

    /// The start of the body, for messages.
    pub fn quote(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(QUOTE)]);
        let one_line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{:?}", one_line.trim())
    }

    /// Success for 2xx; otherwise the error [`classify`] gives.
    pub fn ok(self, what: &str) -> Result<Self, SinkError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(classify(self.status, what, &self.quote()))
        }
    }
}

/// 408, 429 and 5xx are transient; any other non-2xx is a rejection.
pub fn classify(status: StatusCode, what: &str, quote: &str) -> SinkError {
    let message = format!("{what}: HTTP {status} {quote}");
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        SinkError::Transient(message)
    } else {
        SinkError::Rejected {
            status: Some(status.as_u16()),
            message,
        }
    }
}

/// A bounded client (cheap to clone).
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
    timeout: Duration,
}

impl Client {
    /// A client whose every request (connect, send, whole body) ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, SinkError> {
        let inner = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcp-scout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::transient(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { inner, timeout })
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A request builder (add headers and a body, then [`Self::send`]).
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Send `req` and read its answer up to [`BODY_CAP`], all within the timeout. `what`
    /// names the call in errors (`POST /heartbeat`); the URL and headers are never quoted.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Answer, SinkError> {
        self.send_capped(req, what, BODY_CAP).await
    }

    /// [`Self::send`] with another body cap, for the one answer that legitimately grows
    /// with the inventory (a registry's full listing); still a bound.
    pub async fn send_capped(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        cap: usize,
    ) -> Result<Answer, SinkError> {
        let call = async {
            let mut resp = req
                .send()
                .await
                .map_err(|e| describe(&e, what, self.timeout))?;
            let status = resp.status();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = Vec::new();
            let mut cut = false;
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| describe(&e, what, self.timeout))?
            {
                let room = cap - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    cut = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer {
                status,
                content_type,
                body,
                cut,
                cap,
            })
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(no_answer(what, self.timeout)),
        }
    }
}

/// The one message of a request that ran out of time, whichever timer fired first
/// (reqwest's or ours).
fn no_answer(what: &str, timeout: Duration) -> SinkError {
    SinkError::transient(format!(
        "{what}: no answer within {} (the sink's timeout)",
        crate::units::format_duration(timeout)
    ))
}

/// A reqwest error as a transient sink error, by its innermost cause and without the URL
/// (which may carry credentials).
fn describe(e: &reqwest::Error, what: &str, timeout: Duration) -> SinkError {
    if e.is_timeout() {
        return no_answer(what, timeout);
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    SinkError::transient(format!("{what}: {kind}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_transient_and_rejected() {
        for s in [408u16, 429, 500, 502, 503] {
            let st = StatusCode::from_u16(s).unwrap();
            assert!(
                matches!(classify(st, "x", ""), SinkError::Transient(_)),
                "{s}"
            );
        }
        for s in [400u16, 401, 403, 404, 409, 410, 422] {
            let st = StatusCode::from_u16(s).unwrap();
            assert!(
                matches!(classify(st, "x", ""), SinkError::Rejected { status: Some(x), .. } if x == s),
                "{s}"
            );
        }
    }

    #[test]
    fn a_html_answer_says_so_and_quotes_a_bounded_start() {
        let a = Answer {
            status: StatusCode::OK,
            content_type: Some("text/html".into()),
            body: format!("<html>{}</html>", "x".repeat(5000)).into_bytes(),
            cut: false,
            cap: BODY_CAP,
        };
        let e = a
            .json::<serde_json::Value>("GET /agents")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("GET /agents: the answer is not the expected JSON"),
            "{e}"
        );
        assert!(e.contains("content type text/html"), "{e}");
        assert!(e.len() < 400, "{}", e.len());
    }
}
