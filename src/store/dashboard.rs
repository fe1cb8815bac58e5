//! The reads behind the web dashboard: a sorted, paginated page of compact server rows, and
//! a server's check history folded into time buckets (latency chart and status strip).
//!
//! Both run on a [`Reader`] connection. A page is one query for its ids (filter, sort, limit),
//! one `count(*)` for the pager's total, and each row built by SQLite itself (`json_object`
//! over the columns and a few paths of the stored record, by primary key), so a page of 100
//! rows out of 10,000 servers never parses or copies the 10,000 records. The sort
//! key is a closed set ([`SortKey`]), each mapped to a fixed SQL expression, so no request
//! text ever becomes SQL. The free-text filter is a case-insensitive substring of the URL,
//! the server name and version, and the tool names.

use std::time::{Duration, SystemTime};

use rusqlite::params_from_iter;
use serde::Serialize;

use super::read::servers_where;
use super::{Reader, ServerFilter, StoreError};
use crate::finding::rfc3339;

/// Rows in a page when none is asked for.
pub const DEFAULT_PAGE_ROWS: usize = 100;
/// Largest page (the topology view reads one page of up to this many rows).
pub const MAX_PAGE_ROWS: usize = 10_000;
/// Buckets of a history when none is asked for (5-minute buckets over 24 h).
pub const DEFAULT_BUCKETS: usize = 288;
/// Largest number of buckets of a history.
pub const MAX_BUCKETS: usize = 2_000;

/// What a page of the servers table is sorted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Address then port: the inventory's own order.
    #[default]
    Address,
    /// Verdict.
    Kind,
    /// `serverInfo.name`.
    Name,
    /// `serverInfo.version`.
    Version,
    /// Endpoint URL.
    Url,
    /// Transport.
    Transport,
    /// Negotiated protocol version.
    Protocol,
    /// Number of tools.
    Tools,
    /// Whether auth is required.
    Auth,
    /// Health status.
    Health,
    /// 24 h uptime.
    Uptime,
    /// Last seen.
    LastSeen,
    /// The sources that found it.
    Origin,
}

impl SortKey {
    /// Every key's name, as the API accepts them.
    pub const NAMES: &'static str = "address, kind, name, version, url, transport, protocol, \
                                     tools, auth, health, uptime, last_seen, origin";

    /// The key named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "address" => Self::Address,
            "kind" => Self::Kind,
            "name" => Self::Name,
            "version" => Self::Version,
            "url" => Self::Url,
            "transport" => Self::Transport,
            "protocol" => Self::Protocol,
            "tools" => Self::Tools,
            "auth" => Self::Auth,
            "health" => Self::Health,
            "uptime" => Self::Uptime,
            "last_seen" => Self::LastSeen,
            "origin" => Self::Origin,
            _ => return None,
        })
    }

    /// The fixed SQL expression sorted on (never request text).
    fn sql(self) -> &'static str {
        match self {
            Self::Address => "s.ip_key",
            Self::Kind => "s.kind",
            Self::Name => "coalesce(s.server_name, '')",
            Self::Version => "coalesce(s.record ->> '$.server_version', '')",
            Self::Url => "s.url",
            Self::Transport => "coalesce(s.transport, '')",
            Self::Protocol => "coalesce(s.record ->> '$.protocol_version', '')",
            Self::Tools => "coalesce(json_array_length(s.record, '$.tools'), 0)",
            Self::Auth => "coalesce(s.record ->> '$.auth.required', 0)",
            // Worst first when descending.
            Self::Health => {
                "CASE s.health_status WHEN 'healthy' THEN 0 WHEN 'unknown' THEN 1 \
                 WHEN 'degraded' THEN 2 WHEN 'unhealthy' THEN 3 ELSE 4 END"
            }
            Self::Uptime => "coalesce(s.uptime ->> '$.\"24h\"', -1)",
            Self::LastSeen => "s.last_seen",
            Self::Origin => "s.origins",
        }
    }
}

/// One request for a page of the servers table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// The same filters as the server list.
    pub filter: ServerFilter,
    /// Case-insensitive substring of URL, name, version or a tool name.
    pub text: Option<String>,
    /// Sort key.
    pub sort: SortKey,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Rows skipped.
    pub offset: usize,
    /// Rows returned (at most [`MAX_PAGE_ROWS`]).
    pub limit: usize,
}

/// One bucket of a server's check history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// When the bucket starts (RFC 3339 UTC).
    pub start: String,
    /// Critical check results in it.
    pub total: u64,
    /// Of those, the ones that passed.
    pub ok: u64,
    /// Mean latency of the `mcp` (handshake) check, when measured.
    pub latency_avg_ms: Option<f64>,
    /// Slowest latency of the `mcp` check, when measured.
    pub latency_max_ms: Option<f64>,
}

/// A server's check history over a window, in equal buckets, oldest first; buckets without
/// a result are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The window's start (RFC 3339 UTC).
    pub from: String,
    /// Its end (now).
    pub to: String,
    /// Length of a bucket in seconds.
    pub bucket_s: f64,
    /// The buckets that hold results.
    pub buckets: Vec<Bucket>,
}

/// One row of the servers table as a JSON object, by id.
const ROW_SQL: &str = "SELECT json_object(
        'id', s.id, 'status', s.status, 'ip', s.ip, 'port', s.port, 'url', s.url,
        'kind', s.kind, 'transport', s.transport, 'server_name', s.server_name,
        'server_version', s.record ->> '$.server_version',
        'protocol_version', s.record ->> '$.protocol_version',
        'tools', coalesce(json_array_length(s.record, '$.tools'), 0),
        'auth', s.record -> '$.auth',
        'health', s.health_status,
        'health_reason', s.record ->> '$.health.reason',
        'flapping', s.record -> '$.health.flapping',
        'latency_ms', s.record -> '$.health.latency_ms',
        'uptime_24h', s.uptime -> '$.\"24h\"',
        'last_seen', s.last_seen,
        'origins', json(s.origins),
        'jobs', (SELECT json_group_array(job) FROM server_jobs WHERE server_id = s.id),
        'k8s', s.record -> '$.k8s',
        'node', s.record -> '$.node'
     ) FROM servers s WHERE s.id = ?1";

impl Reader {
    /// One page of compact server rows (JSON objects built by SQLite) and the number of
    /// servers matching the query in all.
    pub fn servers_page(&self, q: &PageQuery) -> Result<(Vec<u8>, usize), StoreError> {
        // Two steps: the ids of the page (filter, sort, limit: only the sort key is computed
        // for every matching row), then each row's object by primary key. Building the
        // objects in the sorting query would build one per matching server, not per row.
        let (mut ids_sql, args) = page_where("SELECT s.id FROM servers s WHERE 1 = 1".into(), q);
        let dir = if q.descending { "DESC" } else { "ASC" };
        ids_sql.push_str(&format!(
            " ORDER BY {} {dir}, s.ip_key, s.port, s.id LIMIT {} OFFSET {}",
            q.sort.sql(),
            q.limit.min(MAX_PAGE_ROWS),
            q.offset
        ));
        self.with(|conn| {
            let ids: Vec<String> = conn
                .prepare_cached(&ids_sql)
                .and_then(|mut st| {
                    st.query_map(params_from_iter(args.iter()), |r| r.get(0))?
                        .collect()
                })
                .map_err(self.sqlite("reading a page of servers"))?;
            let mut row = conn
                .prepare_cached(ROW_SQL)
                .map_err(self.sqlite("preparing a page row"))?;
            let mut out = Vec::with_capacity(64 * 1024);
            out.push(b'[');
            for (i, id) in ids.iter().enumerate() {
                let json: String = row
                    .query_row([id], |r| r.get(0))
                    .map_err(self.sqlite("reading a page row"))?;
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(json.as_bytes());
            }
            out.push(b']');
            let total = self.count_matching(conn, q)?;
            Ok((out, total))
        })
    }

    fn count_matching(
        &self,
        conn: &rusqlite::Connection,
        q: &PageQuery,
    ) -> Result<usize, StoreError> {
        let (sql, args) = page_where("SELECT count(*) FROM servers s WHERE 1 = 1".into(), q);
        conn.prepare_cached(&sql)
            .and_then(|mut st| st.query_row(params_from_iter(args.iter()), |r| r.get::<_, i64>(0)))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(self.sqlite("counting a page of servers"))
    }

    /// The check history of server `id` over the `window` ending `now`, in `buckets` equal
    /// buckets (1 to [`MAX_BUCKETS`]): critical results and passes per bucket, and the `mcp`
    /// check's mean and slowest latency.
    pub fn series(
        &self,
        id: &str,
        window: Duration,
        buckets: usize,
        now: SystemTime,
    ) -> Result<Series, StoreError> {
        let buckets = buckets.clamp(1, MAX_BUCKETS);
        let from = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        let from_s = from
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let bucket_s = (window.as_secs_f64() / buckets as f64).max(1.0);
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT CAST((unixepoch(at, 'subsec') - ?2) / ?3 AS INTEGER) AS b,
                            sum(critical), sum(critical AND ok),
                            avg(CASE WHEN check_name = 'mcp' THEN latency_ms END),
                            max(CASE WHEN check_name = 'mcp' THEN latency_ms END)
                     FROM check_results WHERE server_id = ?1 AND at >= ?4
                     GROUP BY b ORDER BY b",
                )
                .map_err(self.sqlite("reading a server's check history"))?;
            let rows = st
                .query_map(
                    rusqlite::params![id, from_s, bucket_s, rfc3339(from)],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<f64>>(3)?,
                            r.get::<_, Option<f64>>(4)?,
                        ))
                    },
                )
                .map_err(self.sqlite("reading a server's check history"))?;
            let mut out = Vec::new();
            for row in rows {
                let (b, total, ok, avg, max) =
                    row.map_err(self.sqlite("reading a server's check history"))?;
                let start = from + Duration::from_secs_f64(bucket_s * b.max(0) as f64);
                out.push(Bucket {
                    start: rfc3339(start),
                    total: u64::try_from(total).unwrap_or(0),
                    ok: u64::try_from(ok).unwrap_or(0),
                    latency_avg_ms: avg,
                    latency_max_ms: max,
                });
            }
            Ok(Series {
                from: rfc3339(from),
                to: rfc3339(now),
                bucket_s,
                buckets: out,
            })
        })
    }
}

/// `head` with the page's filters and free text appended (see [`servers_where`]).
fn page_where(head: String, q: &PageQuery) -> (String, Vec<String>) {
    let (mut sql, mut args) = servers_where(head, &q.filter);
    if let Some(t) = &q.text {
        args.push(t.to_lowercase());
        // The cheap columns first: the version needs the record parsed, so it is tried last.
        sql.push_str(&format!(
            " AND (instr(lower(s.url), ?{n}) > 0
                  OR instr(lower(coalesce(s.server_name, '')), ?{n}) > 0
                  OR EXISTS (SELECT 1 FROM server_tools t
                             WHERE t.server_id = s.id AND instr(lower(t.name), ?{n}) > 0)
                  OR instr(lower(coalesce(s.record ->> '$.server_version', '')), ?{n}) > 0)",
            n = args.len()
        ));
    }
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::{self, CheckResult, HealthState, Thresholds};
    use crate::store::testutil::{mcp, open, run, tool, TempDir};
    use crate::store::{HealthUpdate, RunEnd, ServerId};

    fn page(rows: &[u8]) -> Vec<serde_json::Value> {
        serde_json::from_slice(rows).unwrap()
    }

    #[tokio::test]
    async fn a_page_is_filtered_sorted_and_counted_and_a_series_buckets_the_checks() {
        let dir = TempDir::new("dashboard-page");
        let (store, handle) = open(&dir.db(), 3);
        let mut records = Vec::new();
        for (i, name) in ["bravo", "alpha", "charlie"].iter().enumerate() {
            let mut r = mcp(&format!("10.0.0.{}", i + 1), 8000, vec![tool("echo", "aa")]);
            r.server_name = Some((*name).into());
            if *name == "charlie" {
                r.tools.push(tool("Rare_Audit", "bb"));
            }
            records.push(r);
        }
        run(&store, "lan", records, RunEnd::Completed).await;
        let reader = Reader::open(dir.db()).unwrap();

        let q = PageQuery {
            sort: SortKey::Name,
            descending: true,
            limit: 2,
            ..PageQuery::default()
        };
        let (rows, total) = reader.servers_page(&q).unwrap();
        let rows = page(&rows);
        assert_eq!(total, 3);
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r["server_name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["charlie", "bravo"]);
        assert_eq!(rows[0]["tools"], 2);
        assert_eq!(rows[0]["health"], "unknown");
        assert_eq!(rows[0]["origins"], serde_json::json!(["sweep"]));
        assert_eq!(rows[0]["jobs"], serde_json::json!(["lan"]));
        assert!(rows[0]["k8s"].is_null(), "{}", rows[0]);

        // Past the end: no rows, the total still counted.
        let (rows, total) = reader
            .servers_page(&PageQuery {
                offset: 5,
                limit: 2,
                ..PageQuery::default()
            })
            .unwrap();
        assert_eq!((page(&rows).len(), total), (0, 3));

        // Free text matches a tool name, case-insensitively.
        let (rows, total) = reader
            .servers_page(&PageQuery {
                text: Some("rare_aud".into()),
                limit: 10,
                ..PageQuery::default()
            })
            .unwrap();
        assert_eq!(total, 1);
        assert_eq!(page(&rows)[0]["server_name"], "charlie");

        // Two checks of one server: one bucket, one pass of two, the mcp check's latency.
        let id = ServerId::from_url("http://10.0.0.2:8000/mcp").into_string();
        let now = SystemTime::now();
        let mut st = HealthState::new(now);
        for (k, ok) in [(2u64, true), (1, false)] {
            let at = now - Duration::from_secs(k);
            let r = if ok {
                CheckResult::pass("mcp").with_latency(Duration::from_millis(10))
            } else {
                CheckResult::fail("mcp", "refused").with_latency(Duration::from_millis(30))
            };
            let (next, transition) =
                state::step(&st, std::slice::from_ref(&r), &Thresholds::default(), at);
            store
                .record_health(HealthUpdate {
                    server_id: id.clone(),
                    at,
                    results: vec![r],
                    health: next.health().clone(),
                    transition,
                    tools: None,
                })
                .await
                .unwrap();
            st = next;
        }
        let s = reader
            .series(&id, Duration::from_secs(3600), 12, SystemTime::now())
            .unwrap();
        assert_eq!(s.bucket_s, 300.0);
        assert_eq!(s.buckets.len(), 1, "{s:?}");
        let b = &s.buckets[0];
        assert_eq!((b.total, b.ok), (2, 1));
        assert!((b.latency_avg_ms.unwrap() - 20.0).abs() < 0.01, "{b:?}");
        assert!((b.latency_max_ms.unwrap() - 30.0).abs() < 0.01, "{b:?}");
        drop(store);
        handle.wait().await.unwrap();
    }

    #[test]
    fn every_sort_key_parses_from_its_listed_name() {
        for name in SortKey::NAMES.split(", ") {
            assert!(SortKey::parse(name).is_some(), "{name}");
        }
        assert_eq!(SortKey::parse("1; DROP TABLE servers"), None);
    }
}
