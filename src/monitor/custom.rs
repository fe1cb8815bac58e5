//! Custom checks (`health.checks`): `http` against the server's origin, `mcp_call` (the
//! handshake, then `tools/call` with fixed arguments, then the DELETE) and `tcp` (a
//! connect). Each fills [`CheckVars`] with what it observed and evaluates its `expect`; a
//! check without one passes on a 2xx, a result without `isError`, or a connection.
//!
//! A CEL runtime error (a missing key, a wrong type) is a failed check whose message is the
//! error, never a panic. A body cut at the cap fails the check before `expect` runs: a
//! condition over half a body would be judged on what the server never said.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::cel::{CheckVars, ServerVars, ToolVar};
use super::check::{timed_out, Checker, Report, Step, Target};
use super::exchange::Exchange;
use super::plan::{CustomCheck, Probe};
use super::state::CheckResult;
use crate::fingerprint::http::{Request, Response};
use crate::fingerprint::tls::CertSummary;
use crate::fingerprint::{Transport, MODERN_VERSION};

/// One run of a custom check: the checker, the server, its token and the deadline.
pub(crate) struct Run<'a> {
    pub(crate) checker: &'a Checker,
    pub(crate) t: &'a Target,
    pub(crate) bearer: Option<&'a str>,
    pub(crate) timeout: Duration,
}

/// Run `c` as `run` says.
pub(crate) async fn run(run: &Run<'_>, c: &CustomCheck) -> Report {
    let t = run.t;
    let mut vars = CheckVars {
        tools: t
            .tools
            .iter()
            .map(|name| ToolVar {
                name: name.clone(),
                description: String::new(),
            })
            .collect(),
        server: ServerVars {
            name: t.server_name.clone(),
            version: None,
            protocol_version: t.protocol_version.clone(),
        },
        ..CheckVars::default()
    };
    let start = Instant::now();
    let (observed, steps) = match &c.probe {
        Probe::Http { .. } => http(run, &c.probe, &mut vars).await,
        Probe::Tcp => tcp(t, run.timeout).await,
        Probe::McpCall { tool, arguments } => {
            if t.transport == Some(Transport::Sse) {
                (
                    Err("mcp_call needs Streamable HTTP; this server speaks legacy SSE".into()),
                    Vec::new(),
                )
            } else {
                call(run, tool, arguments, &mut vars).await
            }
        }
    };
    let latency = start.elapsed();
    vars.latency_ms = latency.as_secs_f64() * 1000.0;
    let result = match observed {
        Err(e) => CheckResult::fail(&c.name, e),
        Ok(default) => judge(c, &vars, default),
    };
    Report {
        result: CheckResult {
            severity: c.severity,
            ..result.with_latency(latency)
        },
        steps,
        tools: None,
        server: vars.server,
        total: Duration::ZERO,
    }
}

/// The verdict: `expect` when there is one, else the probe's own pass/fail.
fn judge(c: &CustomCheck, vars: &CheckVars, default: Result<String, String>) -> CheckResult {
    match &c.expect {
        None => match default {
            Ok(m) => CheckResult::pass(&c.name).with_message(m),
            Err(m) => CheckResult::fail(&c.name, m),
        },
        Some(cond) => match cond.eval(vars) {
            Ok(true) => {
                CheckResult::pass(&c.name).with_message(format!("expect {:?} holds", cond.source()))
            }
            Ok(false) => CheckResult::fail(&c.name, format!("expect {:?} is false", cond.source())),
            Err(e) => CheckResult::fail(&c.name, format!("expect {:?}: {e}", cond.source())),
        },
    }
}

/// What a probe observed: `Err` when it could not observe at all (the check fails whatever
/// `expect` says), else its default verdict.
type Observed = Result<Result<String, String>, String>;

async fn http(run: &Run<'_>, probe: &Probe, vars: &mut CheckVars) -> (Observed, Vec<Step>) {
    let Run {
        checker,
        t,
        bearer,
        timeout,
    } = *run;
    let Probe::Http {
        path,
        method,
        headers,
        body,
    } = probe
    else {
        unreachable!("http() runs http probes");
    };
    let url = t.origin().join(path).unwrap_or_else(|_| t.origin());
    let mut req = Request::new(method.clone(), url);
    let mut has_auth = false;
    for (k, v) in headers {
        has_auth |= k.eq_ignore_ascii_case("authorization");
        req = req.header(k.clone(), v.clone());
    }
    if let (Some(b), false) = (bearer, has_auth) {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    if let Some(b) = body {
        req.body = Some(b.clone().into_bytes());
    }
    let name = format!("{method} {path}");
    let start = Instant::now();
    let sent = tokio::time::timeout(timeout, checker.http.send(&req)).await;
    let latency = start.elapsed();
    let step = |ok, message: String| Step {
        name: name.clone(),
        ok,
        latency,
        message,
    };
    let r = match sent {
        Err(_) => {
            let m = timed_out(timeout);
            return (Err(m.clone()), vec![step(false, m)]);
        }
        Ok(Err(e)) => return (Err(e.to_string()), vec![step(false, e.to_string())]),
        Ok(Ok(r)) => r,
    };
    if r.truncated {
        let m = format!(
            "the body was cut at the {}-byte body cap (health.body_cap) or the deadline",
            checker.body_cap
        );
        return (Err(m.clone()), vec![step(false, m)]);
    }
    observe(&r, vars);
    let ok = (200..300).contains(&r.status);
    let m = format!("{} {}", r.status, r.media_type());
    let default = if ok {
        Ok(format!("HTTP {}", r.status))
    } else {
        Err(format!("HTTP {} (not 2xx)", r.status))
    };
    (Ok(default), vec![step(ok, m)])
}

/// What an HTTP response gives the variables: status, headers (lowercase names, the first
/// value of a repeated one), body (JSON when it parses) and the certificate's days left.
fn observe(r: &Response, vars: &mut CheckVars) {
    vars.status = Some(r.status);
    for (k, v) in &r.headers {
        let k = k.as_str().to_ascii_lowercase();
        if let Ok(v) = v.to_str() {
            vars.headers.entry(k).or_insert_with(|| v.to_string());
        }
    }
    vars.body = CheckVars::body_from_bytes(&r.body);
    vars.cert_days_left = r.cert.as_ref().and_then(days_left);
}

async fn tcp(t: &Target, timeout: Duration) -> (Observed, Vec<Step>) {
    let host = t
        .url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let port = t.url.port_or_known_default().unwrap_or(80);
    let start = Instant::now();
    let out = tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await;
    let latency = start.elapsed();
    let (ok, m) = match out {
        Err(_) => (false, timed_out(timeout)),
        Ok(Err(e)) => (false, format!("connection failed: {e}")),
        Ok(Ok(_)) => (true, "connected".to_string()),
    };
    let step = Step {
        name: format!("connect {host}:{port}"),
        ok,
        latency,
        message: m.clone(),
    };
    let observed = if ok { Ok(Ok(m)) } else { Err(m) };
    (observed, vec![step])
}

async fn call(
    run: &Run<'_>,
    tool: &str,
    arguments: &Value,
    vars: &mut CheckVars,
) -> (Observed, Vec<Step>) {
    let Run {
        checker,
        t,
        bearer,
        timeout,
    } = *run;
    let mut ex = Exchange::new(checker, t.url.clone(), bearer, timeout);
    let modern_only = t.protocol_version.as_deref() == Some(MODERN_VERSION);
    let out = tokio::time::timeout(timeout, async {
        ex.handshake(modern_only).await?;
        ex.call_tool(tool, arguments).await
    })
    .await;
    let observed = match out {
        Err(_) => Err(ex.timed_out(timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(result)) => {
            let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
            let text = first_text(&result);
            vars.result = Some(result);
            Ok(if is_error {
                Err(format!("{tool} returned isError{text}"))
            } else {
                Ok(format!("{tool} answered{text}"))
            })
        }
    };
    vars.status = ex.status;
    vars.cert_days_left = ex.cert.as_ref().and_then(days_left);
    if ex.server.name.is_some() || ex.server.protocol_version.is_some() {
        vars.server = ex.server.clone();
    }
    ex.close().await;
    (observed, ex.steps)
}

/// `: "first text content"`, shortened, for the message.
fn first_text(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find_map(|p| p.get("text").and_then(Value::as_str)))
        .map(|t| {
            let s: String = t.chars().take(80).collect();
            format!(": {s:?}")
        })
        .unwrap_or_default()
}

/// Days from now to the certificate's notAfter (`YYYY-MM-DDTHH:MM:SSZ`), negative once it
/// expired.
fn days_left(cert: &CertSummary) -> Option<i64> {
    let date = cert.not_after.get(..10)?;
    let mut parts = date.split('-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    let end = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    let today = time::OffsetDateTime::now_utc().date();
    Some(i64::from(end.to_julian_day() - today.to_julian_day()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::cel::Condition;
    use crate::monitor::plan::Match;
    use crate::monitor::state::Severity;

    fn check(expect: Option<&str>) -> CustomCheck {
        CustomCheck {
            name: "c".into(),
            matcher: Match::default(),
            probe: Probe::Tcp,
            expect: expect.map(|e| Condition::compile(e).unwrap()),
            severity: Severity::Warning,
            interval: None,
            timeout: None,
        }
    }

    #[test]
    fn expect_decides_and_runtime_errors_are_failures() {
        let vars = CheckVars {
            status: Some(503),
            body: serde_json::json!({"db": "down"}),
            ..CheckVars::default()
        };
        let r = judge(
            &check(Some("status == 503 && body.db == 'down'")),
            &vars,
            Err("x".into()),
        );
        assert!(r.ok, "{r:?}");
        let r = judge(&check(Some("status == 200")), &vars, Ok("x".into()));
        assert!(!r.ok);
        assert_eq!(r.message, "expect \"status == 200\" is false");
        let r = judge(&check(Some("body.nosuch == 1")), &vars, Ok("x".into()));
        assert!(
            !r.ok && r.message.starts_with("expect \"body.nosuch == 1\": "),
            "{}",
            r.message
        );
        let r = judge(&check(None), &vars, Err("HTTP 503 (not 2xx)".into()));
        assert_eq!((r.ok, r.message.as_str()), (false, "HTTP 503 (not 2xx)"));
    }

    #[test]
    fn responses_become_variables() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("Content-Type", "application/json".parse().unwrap());
        headers.append("x-Multi", "first".parse().unwrap());
        headers.append("x-Multi", "second".parse().unwrap());
        let r = Response {
            status: 503,
            headers,
            body: bytes::Bytes::from_static(b"{\"db\": \"down\"}"),
            truncated: false,
            cert: Some(CertSummary {
                subject: "x".into(),
                not_after: "2999-01-01T00:00:00Z".into(),
            }),
            elapsed: Duration::ZERO,
        };
        let mut vars = CheckVars::default();
        observe(&r, &mut vars);
        assert_eq!(vars.status, Some(503));
        assert_eq!(vars.headers["content-type"], "application/json");
        assert_eq!(vars.headers["x-multi"], "first");
        assert_eq!(vars.body, serde_json::json!({"db": "down"}));
        assert!(vars.cert_days_left.unwrap() > 0);
        let cond = Condition::compile(
            "status == 503 && body.db == 'down' && headers['content-type'] == 'application/json'",
        )
        .unwrap();
        assert_eq!(cond.eval(&vars), Ok(true));
        let text = Response {
            body: bytes::Bytes::from_static(b"not json"),
            ..r
        };
        observe(&text, &mut vars);
        assert_eq!(vars.body, serde_json::json!("not json"));
    }

    #[test]
    fn certificate_days_count_from_today() {
        let far = CertSummary {
            subject: "x".into(),
            not_after: "2999-01-01T00:00:00Z".into(),
        };
        assert!(days_left(&far).unwrap() > 300_000);
        let past = CertSummary {
            not_after: "2001-01-01T00:00:00Z".into(),
            ..far
        };
        assert!(days_left(&past).unwrap() < 0);
    }

    #[test]
    fn the_first_text_content_is_quoted() {
        let v = serde_json::json!({"content": [{"type": "text", "text": "hi"}]});
        assert_eq!(first_text(&v), ": \"hi\"");
        assert_eq!(first_text(&serde_json::json!({})), "");
    }
}
