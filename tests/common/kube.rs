//! `scripts/peers/kube_mock.py`, a MOCK of the Kubernetes API server (no API server can run
//! here), as the tests drive it on loopback: start (and restart) it, call its API and its
//! `/control/*` routes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::daemon::http;
use super::{root, ReadyLine, Reaped};

/// A running kube-mock on `addr`; stopped on drop.
pub struct KubeMock {
    pub addr: SocketAddr,
    bookmark_interval: Option<&'static str>,
    child: Option<Reaped>,
}

impl KubeMock {
    /// Start it on `addr` with its default bookmark interval.
    pub fn start(addr: SocketAddr) -> Self {
        Self::start_with(addr, None, None)
    }

    /// Start it on `addr`, loading `pods` (a JSON list or PodList) and sending a BOOKMARK
    /// every `bookmark_interval` seconds when given.
    pub fn start_with(
        addr: SocketAddr,
        pods: Option<&Path>,
        bookmark_interval: Option<&'static str>,
    ) -> Self {
        let mut m = Self {
            addr,
            bookmark_interval,
            child: None,
        };
        m.restart(pods);
        m
    }

    /// Stop it (if running) and start a fresh one on the same address: an API server
    /// restart that lost its watch cache.
    pub fn restart(&mut self, pods: Option<&Path>) {
        self.child = None;
        let mut cmd = Command::new(root().join("scripts/peers/run.sh"));
        cmd.args(["kube-mock", "--listen", &self.addr.to_string()]);
        if let Some(s) = self.bookmark_interval {
            cmd.args(["--bookmark-interval", s]);
        }
        if let Some(p) = pods {
            cmd.arg("--pods").arg(p);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kube-mock");
        let mut child = Reaped(child);
        let line =
            ReadyLine::watch(&mut child).wait(&mut child, "kube-mock", Duration::from_secs(20));
        assert!(line.starts_with("READY"), "{line}");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        self.child = None;
    }

    /// One request with a JSON body: the status and the parsed answer (`Null` if not JSON).
    pub fn call(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let (code, text) = http(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// [`KubeMock::call`] that must answer 200; the answer.
    pub fn ok(&self, method: &str, path: &str, body: &Value) -> Value {
        let (code, v) = self.call(method, path, body);
        assert_eq!(code, 200, "{method} {path}: {v}");
        v
    }

    /// Add or replace a pod (or a list of them).
    pub fn put(&self, pod: &Value) {
        self.ok("POST", "/control/pods", pod);
    }

    /// Every API request it has recorded, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.ok("GET", "/control/requests", &Value::Null)
            .as_array()
            .unwrap()
            .clone()
    }
}
