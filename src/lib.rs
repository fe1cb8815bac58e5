//! mcp-scout: find Model Context Protocol (MCP) servers on a network and keep track of them.
//!
//! ```text
//!             discover/                      fingerprint/                 inventory (store/)          sinks/
//!  config ─▶ sweep   (CIDR × ports, ICMP) ─┐
//!            mdns    (DNS-SD browse)       ├─▶ Candidate ─▶ classify ─▶ Finding ─▶ upsert, diff ─▶ Change ─▶ mcp-mesh, kailash-file,
//!            dns_srv (SRV + TXT)           │   (deduped     (HTTP/MCP                ▲                      etcd, webhook, consul,
//!            static  (listed URLs)         │    by key)      handshake)              │                      contextforge, server-json
//!            kube    (node-local pods)    ─┘
//!                                                                           monitor/ (health checks on a schedule,
//!                                                                           state machine) ─▶ Health transitions
//! ```
//!
//! Settings flow: raw input has two front doors, [`cli`] (flags) and, for the daemon, a config
//! job; both become a [`plan::JobSpec`], which [`plan`] validates into one typed
//! [`plan::JobPlan`]. Nothing below the commands sees a clap or serde-raw type.
//!
//! One run of a plan is [`pipeline::run`]:
//! - [`target`] and [`ports`] parse what the user names into a [`target::TargetSet`] and a
//!   [`ports::PortList`]; [`permute`] orders address×port indices pseudo-randomly in O(1)
//!   memory;
//! - [`gather`] runs the announce sources ([`discover::mdns`], [`discover::dns_srv`]) behind
//!   the [`scope`] wall;
//! - [`discover::icmp`] finds live hosts; [`discover::sweep`] probes them by TCP connect and
//!   streams [`vocab::ProbeResult`]s over a bounded channel ([`vocab`] is the engines'
//!   vocabulary and imports nothing of ours);
//! - [`fingerprint`] classifies open ports, and [`finding::Record`] joins both into the
//!   stable output schema;
//! - [`output`] writes records (table, JSON, NDJSON, CSV); it is the only place, with the
//!   commands, that touches stdout.
//!
//! Commands are glue: [`scan`], [`probe`] and [`watch`] (and, in [`commands`], `check`); [`shutdown`] handles signals,
//! [`sys`] the descriptor limit, [`units`] durations and [`hash`] the one stable hash (FNV-1a)
//! of ids, phases and tool lists.
//!
//! The service: [`config`] reads the daemon's YAML into the same job plans; [`daemon`] runs
//! them on schedules and serves the API; [`store`] is its SQLite inventory (one writer
//! actor, read-only readers); [`commands`] holds the service-side commands' glue.
//! [`monitor`] is the health monitor: the check engine that speaks MCP to each server, CEL
//! conditions, the `health:` plan, the scheduler and the per-server state machine; the
//! daemon runs it over the inventory (`daemon::monitor`), and `mcp-scout check` runs its
//! checks once. [`sinks`] feed registries (MCP Mesh, a Kailash file, etcd, webhooks,
//! ContextForge, Consul, server.json) from the store's change feed, one task per sink with a
//! durable cursor (`daemon::sinks`), and once per scan for `scan --push`.
//! [`kube`] is the Kubernetes side of a DaemonSet: the API client from the `kubernetes:`
//! plan, the node-local pod watch whose candidates a job fingerprints at once
//! (`daemon::pods`), the Lease election behind `owner: leader` jobs, and the ready peers
//! whose rendezvous split is `shard: auto` (`daemon::cluster`). The web dashboard's page is
//! embedded and served by `daemon::web`.
//!
//! Engines never print or exit; errors are typed per module (`thiserror`), and only the
//! binary uses `anyhow`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod finding;
pub mod fingerprint;
pub mod gather;
pub mod hash;
pub mod kube;
pub mod monitor;
pub mod output;
pub mod permute;
pub mod pipeline;
pub mod plan;
pub mod ports;
pub mod probe;
pub mod scan;
pub mod scope;
pub mod shutdown;
pub mod sinks;
pub mod store;
pub mod sys;
pub mod target;
pub mod units;
pub mod vocab;
pub mod watch;
