//! mcp-scout: find Model Context Protocol (MCP) servers on a network and keep track of them.
//!
//! ```text
//!             discover/                      fingerprint/                 inventory (store/)          sinks (registry/)
//!  config ─▶ sweep   (CIDR × ports, ICMP) ─┐
//!            mdns    (DNS-SD browse)       ├─▶ Candidate ─▶ classify ─▶ Finding ─▶ upsert, diff ─▶ Change ─▶ mcp-mesh, kailash-file,
//!            dns_srv (SRV + TXT)           │   (deduped     (HTTP/MCP                ▲                      etcd, webhook, consul,
//!            static  (listed URLs)        ─┘    by key)      handshake)              │                      server.json export, stdout
//!                                                                           monitor/ (health checks on a schedule,
//!                                                                           state machine) ─▶ Health transitions
//! ```
//!
//! What exists today is the first stage: the sweep.
//! - [`target`] and [`ports`] parse what the user names into a [`target::TargetSet`] and a
//!   [`ports::PortList`];
//! - [`permute`] orders address×port indices pseudo-randomly in O(1) memory;
//! - [`discover::icmp`] finds live hosts; [`discover::sweep`] probes them by TCP connect and
//!   streams [`finding::ProbeResult`]s over a bounded channel;
//! - [`output`] turns them into [`finding::Record`]s on stdout (table, JSON, NDJSON, CSV);
//! - [`scan`] is the `scan` command's glue, [`shutdown`] the Ctrl-C handling.
//! - [`store`] is the daemon's SQLite inventory: one writer actor, read-only readers.
//!
//! Engines never print or exit; errors are typed per module (`thiserror`), and only the
//! binary uses `anyhow`.

pub mod cli;
pub mod discover;
pub mod finding;
pub mod fingerprint;
pub mod gather;
pub mod output;
pub mod permute;
pub mod ports;
pub mod probe;
pub mod scan;
pub mod scope;
pub mod shutdown;
pub mod store;
pub mod sys;
pub mod target;
pub mod units;
pub mod watch;
