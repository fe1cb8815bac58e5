//! The HTTP side of fingerprinting: one bounded request at a time, recorded for the report.
//!
//! Probing discipline (MCP-WIRE.md): `Host` is the `ip:port` connected to (reqwest derives it
//! from the URL, which always holds the address), no `Origin` is ever sent, proxies from the
//! environment are ignored (a scanner must reach the address it names), certificates are not
//! verified (we fingerprint, we do not trust) but the peer's certificate is kept for the
//! report, redirects are never followed automatically (the classifier decides, within the
//! same host and scope), every request has a deadline that covers connect, TLS, headers and
//! body, and bodies are capped: a server can neither stall nor flood the scanner.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use url::Url;

use super::tls::{self, CertSummary};

/// Default deadline of one request (connect, TLS, headers and body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Default cap on a response body.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default cap on bytes read from an event stream.
pub const DEFAULT_SSE_MAX_BYTES: usize = 64 * 1024;
/// Default cap on time spent reading an event stream.
pub const DEFAULT_SSE_MAX_TIME: Duration = Duration::from_secs(2);

/// Limits of the HTTP client.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Deadline of one request.
    pub request_timeout: Duration,
    /// Cap on a response body.
    pub max_body: usize,
    /// Cap on bytes read from an event stream.
    pub sse_max_bytes: usize,
    /// Cap on time spent reading an event stream.
    pub sse_max_time: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            sse_max_bytes: DEFAULT_SSE_MAX_BYTES,
            sse_max_time: DEFAULT_SSE_MAX_TIME,
        }
    }
}

/// Why a request produced no HTTP response. These are observations, not tool failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Nothing complete arrived before the deadline.
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    /// The TCP connection failed.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The peer answered, but not with HTTP.
    #[error("not HTTP: {0}")]
    NotHttp(String),
    /// The response broke off or was otherwise unusable.
    #[error("bad response: {0}")]
    Other(String),
}

/// The client could not be built (a tool failure, not an observation).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(#[source] reqwest::Error);

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, `DELETE`.
    pub method: reqwest::Method,
    /// Absolute URL (its host is an IP address).
    pub url: Url,
    /// Extra headers (owned names for the health checks' configured ones).
    pub headers: Vec<(std::borrow::Cow<'static, str>, String)>,
    /// JSON body, if any.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: reqwest::Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Add a header.
    pub fn header(
        mut self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set a JSON body (and its content type).
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.header("content-type", "application/json")
    }
}

/// A response with its body read (up to the cap).
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// All response headers.
    pub headers: HeaderMap,
    /// The body, at most the cap.
    pub body: Bytes,
    /// Whether the body was cut at the cap or the deadline.
    pub truncated: bool,
    /// The peer certificate, on HTTPS.
    pub cert: Option<CertSummary>,
    /// Time from sending to the end of the body.
    pub elapsed: Duration,
}

impl Response {
    /// A header value as text (first occurrence).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header as text.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The media type without parameters, lowercased.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// An event stream left open for the caller to read in bounded pieces.
pub struct Stream {
    inner: reqwest::Response,
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The peer certificate, on HTTPS.
    pub cert: Option<CertSummary>,
    deadline: Instant,
    read: usize,
    max_bytes: usize,
}

/// Caps on reading a [`Stream`].
#[derive(Debug, Clone, Copy)]
pub struct StreamCaps {
    /// Bytes read at most.
    pub max_bytes: usize,
    /// Time spent at most, from sending the request.
    pub max_time: Duration,
}

impl Stream {
    /// A header value as text (first occurrence).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type without parameters, lowercased.
    pub fn media_type(&self) -> String {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// Whether the byte cap was reached: what follows was not read.
    pub fn capped(&self) -> bool {
        self.read >= self.max_bytes
    }

    /// Read and drop what is left of the body, within the stream's caps and at most `wait`;
    /// whether the body ended. A response read to its end hands its connection back to the
    /// client's pool, so the endpoint's next request reuses it instead of connecting again
    /// (a server closes a POST's event stream right after the reply). A stream that stays
    /// open costs `wait`, then is dropped as before.
    pub async fn drain(&mut self, wait: Duration) -> bool {
        let until = (Instant::now() + wait).min(self.deadline);
        while self.read < self.max_bytes {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.inner.chunk()).await {
                Ok(Ok(Some(c))) => self.read += c.len(),
                Ok(Ok(None)) => return true,
                Ok(Err(_)) | Err(_) => return false,
            }
        }
        false
    }

    /// The next chunk, or `None` at the end of the stream, the byte cap or the time cap.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.read >= self.max_bytes {
            return None;
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.inner.chunk()).await {
            Ok(Ok(Some(mut c))) => {
                let room = self.max_bytes - self.read;
                if c.len() > room {
                    c.truncate(room);
                }
                self.read += c.len();
                Some(c)
            }
            _ => None,
        }
    }
}

/// The bounded HTTP client used by every probe.
#[derive(Debug, Clone)]
pub struct HttpProber {
    client: reqwest::Client,
    limits: HttpLimits,
}

impl HttpProber {
    /// A client with `limits`.
    pub fn new(limits: HttpLimits) -> Result<Self, ClientError> {
        Self::with_headers(limits, reqwest::header::HeaderMap::new())
    }

    /// A client with `limits` that sends `headers` (the user's credentials, marked
    /// sensitive) on every request.
    pub fn with_headers(
        limits: HttpLimits,
        headers: reqwest::header::HeaderMap,
    ) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .tls_info(true)
            .http1_only()
            .connect_timeout(limits.request_timeout)
            // A probe talks to one endpoint for a few seconds; idle connections beyond that
            // only hold descriptors.
            .pool_idle_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(2)
            .user_agent(concat!("mcp-scout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError)?;
        Ok(Self { client, limits })
    }

    /// The limits in force.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    fn build(&self, req: &Request) -> reqwest::RequestBuilder {
        let mut b = self.client.request(req.method.clone(), req.url.clone());
        for (k, v) in &req.headers {
            b = b.header(k.as_ref(), v);
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        b
    }

    /// Send `req` and read the whole body, within the request deadline and the body cap.
    pub async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let start = Instant::now();
        let deadline = start + self.limits.request_timeout;
        let resp = tokio::time::timeout(self.limits.request_timeout, self.build(req).send())
            .await
            .map_err(|_| HttpError::Timeout(self.limits.request_timeout))?
            .map_err(|e| classify(&e, req.url.scheme(), start.elapsed()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let cert = cert_of(&resp);
        let (body, truncated) = read_capped(resp, deadline, self.limits.max_body).await;
        Ok(Response {
            status,
            headers,
            body,
            truncated,
            cert,
            elapsed: start.elapsed(),
        })
    }

    /// Caps for reading an event stream.
    pub fn sse_caps(&self) -> StreamCaps {
        StreamCaps {
            max_bytes: self.limits.sse_max_bytes,
            max_time: self.limits.sse_max_time,
        }
    }

    /// Caps for reading a whole (JSON) body.
    pub fn body_caps(&self) -> StreamCaps {
        StreamCaps {
            max_bytes: self.limits.max_body,
            max_time: self.limits.request_timeout,
        }
    }

    /// Send `req` and return the response head with its body left open as a [`Stream`],
    /// read within `caps`.
    pub async fn open_stream(&self, req: &Request, caps: StreamCaps) -> Result<Stream, HttpError> {
        let start = Instant::now();
        let resp = tokio::time::timeout(self.limits.request_timeout, self.build(req).send())
            .await
            .map_err(|_| HttpError::Timeout(self.limits.request_timeout))?
            .map_err(|e| classify(&e, req.url.scheme(), start.elapsed()))?;
        Ok(Stream {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            cert: cert_of(&resp),
            inner: resp,
            deadline: start + caps.max_time,
            read: 0,
            max_bytes: caps.max_bytes,
        })
    }
}

async fn read_capped(mut resp: reqwest::Response, deadline: Instant, cap: usize) -> (Bytes, bool) {
    let mut buf = BytesMut::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(c))) => {
                let room = cap - buf.len();
                if c.len() > room {
                    buf.extend_from_slice(&c[..room]);
                    return (buf.freeze(), true);
                }
                buf.extend_from_slice(&c);
            }
            Ok(Ok(None)) => return (buf.freeze(), false),
            // A body that breaks off or outlives the deadline: keep what arrived.
            Ok(Err(_)) | Err(_) => return (buf.freeze(), true),
        }
    }
}

fn cert_of(resp: &reqwest::Response) -> Option<CertSummary> {
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>()?;
    tls::summarize(info.peer_certificate()?)
}

/// Map a reqwest error to what it says about the peer; `waited` is how long the request ran
/// (a timeout reports it, rounded to milliseconds, rather than reqwest's unnamed deadline).
fn classify(e: &reqwest::Error, scheme: &str, waited: Duration) -> HttpError {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    if e.is_timeout() {
        return HttpError::Timeout(Duration::from_millis(waited.as_millis() as u64));
    }
    if lower.contains("invalid http")
        || lower.contains("parse")
        || lower.contains("invalid status")
        || lower.contains("header") && !lower.contains("timed out")
    {
        return HttpError::NotHttp(chain);
    }
    if scheme == "https"
        && (lower.contains("tls")
            || lower.contains("certificate")
            || lower.contains("handshake")
            || lower.contains("record"))
    {
        return HttpError::Tls(chain);
    }
    if e.is_connect() {
        // The innermost cause says it ("Connection refused (os error 111)"); the layers
        // above it repeat the URL and "error sending request".
        return HttpError::Connect(root_cause(e));
    }
    if lower.contains("connection closed before message completed")
        || lower.contains("incomplete message")
    {
        return HttpError::NotHttp(chain);
    }
    HttpError::Other(chain)
}

/// The innermost source of an error, the one that names what happened.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// The error and its sources, joined: reqwest's top-level message alone says little.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    let mut out = parts.join(": ");
    if out.len() > 300 {
        let mut cut = 300;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}
