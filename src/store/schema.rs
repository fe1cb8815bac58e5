//! The store's schema (migrations over `user_version`), its connection settings, and the
//! checks that refuse a file before anything is written to it.
//!
//! A store is refused, never "repaired": a non-empty file must start with the SQLite header
//! and pass `PRAGMA quick_check` on a read-only connection, and an SQLite file with tables
//! but no schema version belongs to someone else. Only then does the writer open it
//! read-write and migrate. Readers open read-only and only check the version.
//!
//! Times are fixed-width RFC 3339 UTC strings (`crate::finding::rfc3339`), so `<` on them is
//! time order. `servers.ip_key` is the address as 16 bytes (IPv4 mapped into IPv6) so that
//! lists sort numerically (`10.0.0.2` before `10.0.0.10`).

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use super::StoreError;

/// How long a connection waits for another's lock before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Every migration, oldest first. Append; never edit one that has shipped.
const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE servers (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    ip          TEXT NOT NULL,
    ip_key      BLOB NOT NULL,
    port        INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    transport   TEXT,
    server_name TEXT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'gone')),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    gone_at     TEXT,
    gone_reason TEXT,
    origins     TEXT NOT NULL DEFAULT '[]',
    record      TEXT NOT NULL
);
CREATE INDEX servers_by_status_addr ON servers (status, ip_key, port);
CREATE INDEX servers_by_addr ON servers (ip, port);
-- Covers the kind filter and the (kind, transport, status) gauge.
CREATE INDEX servers_by_kind ON servers (kind, transport, status);
CREATE INDEX servers_by_transport ON servers (transport);
CREATE INDEX servers_by_name ON servers (server_name);
CREATE INDEX servers_by_gone_at ON servers (gone_at) WHERE status = 'gone';

CREATE TABLE server_jobs (
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    job       TEXT NOT NULL,
    misses    INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (server_id, job)
) WITHOUT ROWID;
CREATE INDEX server_jobs_by_job ON server_jobs (job, server_id);

CREATE TABLE server_tools (
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    PRIMARY KEY (server_id, name)
) WITHOUT ROWID;
CREATE INDEX server_tools_by_name ON server_tools (name, server_id);

CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    server_id TEXT NOT NULL,
    kind      TEXT NOT NULL
              CHECK (kind IN ('appeared', 'updated', 'gone', 'health_changed')),
    detail    TEXT NOT NULL
);
CREATE INDEX changes_by_server ON changes (server_id, seq);
CREATE INDEX changes_by_at ON changes (at);

CREATE TABLE runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job        TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    status     TEXT NOT NULL
               CHECK (status IN ('running', 'completed', 'interrupted', 'failed')),
    error      TEXT,
    probes     INTEGER NOT NULL DEFAULT 0,
    open       INTEGER NOT NULL DEFAULT 0,
    mcp        INTEGER NOT NULL DEFAULT 0,
    appeared   INTEGER NOT NULL DEFAULT 0,
    updated    INTEGER NOT NULL DEFAULT 0,
    gone       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_job ON runs (job, id);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v TEXT
) WITHOUT ROWID;
"#,
    ),
    // 2 (issue 8): health history. The record's `health` array (MCP Mesh health endpoints)
    // is renamed `health_endpoints`, and `health` becomes the monitor's object (null until
    // a check ran). `servers.health` is that object as JSON, `health_status` its status for
    // the filter (`unknown` when never checked, `gone` for gone servers), `uptime` the
    // fractions kept current on each write (so lists never aggregate history).
    M::up(
        r#"
UPDATE servers SET record = json_set(
        json_remove(record, '$.health'),
        '$.health_endpoints', json(json_extract(record, '$.health')),
        '$.health', NULL)
    WHERE json_type(record, '$.health') = 'array';
ALTER TABLE servers ADD COLUMN health TEXT;
ALTER TABLE servers ADD COLUMN health_status TEXT NOT NULL DEFAULT 'unknown'
    CHECK (health_status IN ('unknown', 'healthy', 'degraded', 'unhealthy', 'gone'));
ALTER TABLE servers ADD COLUMN uptime TEXT;
UPDATE servers SET health_status = 'gone' WHERE status = 'gone';
-- Equalities on both, then the list order: a health filter reads its rows in order.
CREATE INDEX servers_by_health ON servers (health_status, status, ip_key, port);

-- One row per check result, kept for store.retention.
CREATE TABLE check_results (
    id         INTEGER PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    check_name TEXT NOT NULL,
    at         TEXT NOT NULL,
    ok         INTEGER NOT NULL,
    critical   INTEGER NOT NULL,
    latency_ms REAL,
    message    TEXT NOT NULL
);
CREATE INDEX check_results_by_server ON check_results (server_id, at);
CREATE INDEX check_results_by_check ON check_results (server_id, check_name, at);
CREATE INDEX check_results_by_at ON check_results (at);

-- Per (server, check, UTC hour `YYYY-MM-DDTHH`), kept 90 days.
CREATE TABLE check_rollups (
    server_id     TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    check_name    TEXT NOT NULL,
    hour          TEXT NOT NULL,
    critical      INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    ok            INTEGER NOT NULL,
    latency_sum   REAL NOT NULL DEFAULT 0,
    latency_count INTEGER NOT NULL DEFAULT 0,
    latency_max   REAL,
    PRIMARY KEY (server_id, check_name, hour)
) WITHOUT ROWID;
CREATE INDEX check_rollups_by_hour ON check_rollups (hour);
"#,
    ),
    // 3 (issue 9): sinks. The change feed is the outbox; each sink keeps its cursor (the
    // last seq it delivered) and state here, the ids it lists (what it may remove), and the
    // deliveries its registry refused for good.
    M::up(
        r#"
CREATE TABLE sink_state (
    sink         TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    cursor       INTEGER NOT NULL,
    last_success TEXT,
    last_error   TEXT,
    last_resync  TEXT,
    updated_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sink_entries (
    sink      TEXT NOT NULL,
    server_id TEXT NOT NULL,
    since     TEXT NOT NULL,
    PRIMARY KEY (sink, server_id)
) WITHOUT ROWID;
CREATE TABLE sink_dead_letters (
    id        INTEGER PRIMARY KEY,
    sink      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    server_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    at        TEXT NOT NULL,
    status    INTEGER,
    error     TEXT NOT NULL
);
CREATE INDEX sink_dead_letters_by_sink ON sink_dead_letters (sink, id);
CREATE INDEX sink_dead_letters_by_at ON sink_dead_letters (at);
"#,
    ),
];

/// The schema version this build writes (`PRAGMA user_version`).
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The 16-byte sort key of an address: IPv4 mapped into IPv6, so one column sorts both.
pub(crate) fn ip_key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Refuse `path` if it exists, is non-empty, and is not a healthy SQLite database that is
/// (or can become) an mcp-scout store. Reads only: the file is left byte-for-byte as it was.
pub(crate) fn validate_existing(path: &Path) -> Result<(), StoreError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("cannot read it: {e}"),
            })
        }
    };
    if len == 0 {
        return Ok(());
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    if read.is_err() || &head != SQLITE_HEADER {
        return Err(StoreError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(e.to_string()))?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| corrupt(e.to_string()))?;
    if problems.first().map(String::as_str) != Some("ok") {
        let mut detail = problems.into_iter().take(3).collect::<Vec<_>>().join("; ");
        if detail.is_empty() {
            detail = "quick_check returned nothing".into();
        }
        return Err(corrupt(format!("quick_check: {detail}")));
    }
    let version = user_version(&conn).map_err(|e| corrupt(e.to_string()))?;
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if tables > 0 {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
            });
        }
    }
    if version > schema_version() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: schema_version(),
        });
    }
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Open the one read-write connection: WAL, `synchronous=NORMAL` (durable at checkpoints,
/// never corrupt), foreign keys on, then migrate to the newest schema.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let sqlite = |what: &'static str| {
        move |source| StoreError::Sqlite {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite("opening the store read-write"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite("setting busy_timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sqlite("switching to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %path.display(),
            mode,
            "the store could not switch to WAL; readers may wait on the writer"
        );
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(sqlite("setting synchronous and foreign_keys"))?;
    Migrations::from_slice(MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|source| StoreError::Migrate {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(conn)
}

/// Open a read-only connection for queries (safe while the daemon writes: WAL).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let sqlite = |what: &'static str| {
        move |source| StoreError::Sqlite {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite("opening the store read-only"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite("setting busy_timeout"))?;
    let version = user_version(&conn).map_err(sqlite("reading the schema version"))?;
    if version == 0 {
        let tables: Option<i64> = conn
            .query_row("SELECT 1 FROM sqlite_master LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(sqlite("reading the schema"))?;
        return Err(if tables.is_some() {
            StoreError::Foreign {
                path: path.to_path_buf(),
            }
        } else {
            StoreError::Missing {
                path: path.to_path_buf(),
            }
        });
    }
    if version > schema_version() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: schema_version(),
        });
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        Migrations::from_slice(MIGRATIONS).validate().unwrap();
    }

    #[test]
    fn migration_2_renames_the_stored_health_array_and_keeps_gone_servers_gone() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations::from_slice(&MIGRATIONS[..1])
            .to_latest(&mut conn)
            .unwrap();
        let mut rec =
            serde_json::to_value(crate::store::testutil::mcp("10.0.0.1", 8000, vec![])).unwrap();
        let obj = rec.as_object_mut().unwrap();
        obj.remove("health_endpoints");
        obj.insert(
            "health".into(),
            serde_json::json!([{"path": "/livez", "status": 200}]),
        );
        for (id, status) in [("a", "active"), ("b", "gone")] {
            conn.execute(
                "INSERT INTO servers (id, url, ip, ip_key, port, kind, status, first_seen,
                                      last_seen, record)
                 VALUES (?1, 'http://10.0.0.1:8000/mcp', '10.0.0.1', x'00', 8000, 'mcp', ?2,
                         't', 't', ?3)",
                rusqlite::params![id, status, rec.to_string()],
            )
            .unwrap();
        }
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .unwrap();
        let (text, health_status): (String, String) = conn
            .query_row(
                "SELECT record, health_status FROM servers WHERE id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let r: crate::finding::Record = serde_json::from_str(&text).unwrap();
        assert_eq!(r.health, None);
        assert_eq!(r.health_endpoints.len(), 1);
        assert_eq!(r.health_endpoints[0].path, "/livez");
        assert_eq!(health_status, "unknown");
        let gone: String = conn
            .query_row(
                "SELECT health_status FROM servers WHERE id = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, "gone");
    }

    #[test]
    fn ip_keys_sort_numerically_and_put_ipv4_first() {
        let k = |s: &str| ip_key(s.parse().unwrap());
        assert!(k("10.0.0.2") < k("10.0.0.10"));
        assert!(k("10.0.0.10") < k("192.168.0.1"));
        assert!(k("255.255.255.255") < k("fd00::1"));
    }
}
