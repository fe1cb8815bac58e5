//! The `webhook` sink: one HTTP POST per change, a CloudEvents 1.0 event in structured
//! mode (`Content-Type: application/cloudevents+json`), signed with HMAC-SHA256.
//!
//! An event sink: it has no registry state to reconcile ([`Sink::reconciles`] is false),
//! so it overrides [`Sink::deliver`] and the runner hands it every change in seq order,
//! uncoalesced. A crash between a delivery and the cursor write re-sends from the old
//! cursor, so a receiver sees every change at least once and de-duplicates on `id`.
//!
//! The event:
//! - `id` is the change's seq (a string), `source` is `mcp-scout/<hostname>`, `type` is
//!   `io.mcp-scout.server.appeared|updated|health_changed|gone`, `subject` the ServerId,
//!   `time` when the change was committed, `datacontenttype` `application/json`.
//! - `data` is the server record as `GET /api/v1/servers/{id}` shows it **now** (at
//!   delivery, which a back-log may delay), plus `change: {kind, at, detail}`, the change
//!   itself with its kind-specific facts (CloudEvents extension attributes must be scalars,
//!   so the detail object lives in `data`). A server already deleted from the inventory by
//!   retention has no record: `data` is then `{id, status: "gone", change}`.
//! - `X-MCP-Scout-Signature: sha256=<hex HMAC-SHA256(secret, body)>` over the exact body
//!   bytes sent, when a `secret` is set; the configured `headers` are added.
//!
//! Answers: 2xx delivered; 408, 429, 5xx and timeouts are transient (the runner backs off
//! and retries the same change, so order holds); any other status is a rejection, kept as
//! a dead letter (`GET /api/v1/sinks`), and the sink moves on. The secret and the header
//! values are never logged nor put in an error.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::http;
use super::plan::Secret;
use super::{Sink, SinkError, OURS};
use crate::store::{Change, StoredServer};

/// The structured-mode content type.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-MCP-Scout-Signature";
/// The prefix of every event `type`.
pub const TYPE_PREFIX: &str = "io.mcp-scout.server.";

/// The settings of one webhook sink.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where events go.
    pub url: url::Url,
    /// The HMAC key (unsigned without one).
    pub secret: Option<Secret>,
    /// Extra request headers.
    pub headers: Vec<(String, Secret)>,
    /// The events' `source`.
    pub source: String,
}

/// The sink.
#[derive(Debug)]
pub struct Webhook {
    client: http::Client,
    settings: Settings,
}

/// `mcp-scout/<hostname>`, the events' `source`.
pub fn source_name() -> String {
    format!("{OURS}/{}", super::hostname())
}

/// `data`: the record plus the change.
#[derive(Serialize)]
struct Data<'a> {
    #[serde(flatten)]
    server: &'a StoredServer,
    change: Value,
}

/// The event envelope.
#[derive(Serialize)]
struct Event<'a, D: Serialize> {
    specversion: &'static str,
    id: String,
    source: &'a str,
    #[serde(rename = "type")]
    kind: String,
    subject: &'a str,
    time: &'a str,
    datacontenttype: &'static str,
    data: D,
}

fn envelope<'a, D: Serialize>(change: &'a Change, source: &'a str, data: D) -> Event<'a, D> {
    Event {
        specversion: "1.0",
        id: change.seq.to_string(),
        source,
        kind: format!("{TYPE_PREFIX}{}", change.kind.as_str()),
        subject: &change.server_id,
        time: &change.at,
        datacontenttype: "application/json",
        data,
    }
}

/// The JSON body of the event for `change` (`server`: its current state, if any).
pub fn event(
    change: &Change,
    server: Option<&StoredServer>,
    source: &str,
) -> Result<Vec<u8>, SinkError> {
    let facts = json!({"kind": change.kind.as_str(), "at": change.at, "detail": change.detail});
    let bytes = match server {
        Some(s) => serde_json::to_vec(&envelope(
            change,
            source,
            Data {
                server: s,
                change: facts,
            },
        )),
        None => serde_json::to_vec(&envelope(
            change,
            source,
            json!({"id": change.server_id, "status": "gone", "change": facts}),
        )),
    };
    bytes.map_err(|e| SinkError::transient(format!("encoding the event: {e}")))
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &Secret, body: &[u8]) -> Result<String, SinkError> {
    // HMAC takes a key of any length, so this error is not expected.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .map_err(|e| SinkError::transient(format!("the webhook secret cannot key HMAC: {e}")))?;
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

impl Webhook {
    /// A sink with `settings`, each request bounded by `timeout`.
    pub fn new(settings: Settings, timeout: Duration) -> Result<Self, SinkError> {
        Ok(Self {
            client: http::Client::new(timeout)?,
            settings,
        })
    }

    async fn send(&self, seq: i64, body: Vec<u8>) -> Result<(), SinkError> {
        let mut req = self
            .client
            .request(Method::POST, self.settings.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE);
        if let Some(secret) = &self.settings.secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, &body)?);
        }
        for (name, value) in &self.settings.headers {
            req = req.header(name.as_str(), value.expose());
        }
        let what = format!("POST event {seq}");
        self.client.send(req.body(body), &what).await?.ok(&what)?;
        Ok(())
    }
}

impl Sink for Webhook {
    /// Events only: a state write has nothing to do.
    async fn put(&mut self, _server: &StoredServer) -> Result<(), SinkError> {
        Ok(())
    }

    async fn remove(&mut self, _id: &str) -> Result<(), SinkError> {
        Ok(())
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn reconciles(&self) -> bool {
        false
    }

    async fn deliver(
        &mut self,
        change: &Change,
        server: Option<&StoredServer>,
        _wanted: bool,
    ) -> Result<(), SinkError> {
        let body = event(change, server, &self.settings.source)?;
        self.send(change.seq, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;
    use crate::store::{testutil, ChangeKind};

    fn change(kind: ChangeKind, id: &str) -> Change {
        Change {
            seq: 42,
            at: "2026-12-02T05:00:00Z".into(),
            server_id: id.into(),
            kind,
            detail: json!({"reason": "new"}),
        }
    }

    #[test]
    fn the_event_is_cloudevents_1_0_with_the_record_and_the_change() {
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let c = change(ChangeKind::HealthChanged, s.id.as_str());
        let v: Value =
            serde_json::from_slice(&event(&c, Some(&s), "mcp-scout/h").unwrap()).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "42");
        assert_eq!(v["source"], "mcp-scout/h");
        assert_eq!(v["type"], "io.mcp-scout.server.health_changed");
        assert_eq!(v["subject"], s.id.as_str());
        assert_eq!(v["time"], "2026-12-02T05:00:00Z");
        assert_eq!(v["datacontenttype"], "application/json");
        let api = serde_json::to_value(&s).unwrap();
        for (k, want) in api.as_object().unwrap() {
            assert_eq!(&v["data"][k], want, "{k}");
        }
        assert_eq!(
            v["data"]["change"],
            json!({"kind": "health_changed", "at": "2026-12-02T05:00:00Z", "detail": {"reason": "new"}})
        );
    }

    #[test]
    fn a_server_no_longer_in_the_inventory_is_sent_as_gone_with_its_id() {
        let c = change(ChangeKind::Gone, "x-1");
        let v: Value = serde_json::from_slice(&event(&c, None, "s").unwrap()).unwrap();
        assert_eq!(v["type"], "io.mcp-scout.server.gone");
        assert_eq!(v["data"]["id"], "x-1");
        assert_eq!(v["data"]["status"], "gone");
        assert_eq!(v["data"]["change"]["kind"], "gone");
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature(&Secret::new("Jefe"), b"what do ya want for nothing?").unwrap();
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
