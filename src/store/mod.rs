//! The daemon's inventory: SQLite on disk, one writer, many readers.
//!
//! - [`id`] derives the [`ServerId`] every row and sink is keyed by;
//! - [`diff`] turns two scan records into the detail of an `updated` change.

pub mod diff;
pub mod id;

pub use self::id::ServerId;
