//! The daemon's inventory: SQLite on disk, one writer, many readers.
//!
//! ```text
//!  jobs, mDNS, API ─▶ Store (cheap clone) ─▶ bounded mpsc ─▶ writer thread (the only
//!                                                             read-write connection)
//!                                                                │ one transaction per command
//!                                                                ▼
//!                        broadcast<Change> ◀── published after commit, in seq order
//!  API handlers, `servers --db` ─▶ Reader (read-only connections, WAL) ─▶ the same file
//! ```
//!
//! - [`id`] derives the [`ServerId`] every row and sink is keyed by.
pub mod id;

pub use self::id::ServerId;
