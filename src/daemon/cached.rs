//! The server reads of the API (`GET /api/v1/servers`, `GET /api/v1/servers/{id}`) answered
//! from the store's in-memory read model ([`crate::store::ReadModel`]), with the SQL path of
//! `api.rs` as the fallback whenever the model cannot answer (not ready, or a server whose
//! changes are too long to keep).
//!
//! A lookup by id and a small list are written on the runtime's worker: they are a hash
//! probe or an ordered walk plus a copy of bytes serialized at commit time, a few
//! microseconds, so handing them to the blocking pool (a wake-up and a context switch each
//! way, most of the old service time) would cost more than the work. A list larger than
//! [`INLINE_LIST_BYTES`] is still copied on the blocking pool, under the same
//! [`super::api::MAX_CONCURRENT_LISTS`] permit as before, so an unfiltered list of 10,000
//! servers neither holds a worker for milliseconds nor multiplies memory under many clients.

use axum::http::StatusCode;
use axum::response::Response;

use super::api::{error, json_bytes, AppState};
use crate::store::{Lookup, ServerFilter};

/// Lists up to this size are written on the runtime's worker (about 50 µs of copying).
pub const INLINE_LIST_BYTES: usize = 256 * 1024;

/// The list for `filter` from the read model; `None` when the model cannot answer.
pub(super) async fn list(st: &AppState, filter: &ServerFilter) -> Option<Response> {
    let selection = st.store.read_model().servers(filter)?;
    if selection.bytes() <= INLINE_LIST_BYTES {
        return Some(json_bytes(selection.into_json()));
    }
    let Ok(_permit) = st.lists.clone().acquire_owned().await else {
        return Some(error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    };
    Some(
        match tokio::task::spawn_blocking(move || selection.into_json()).await {
            Ok(body) => json_bytes(body),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"),
        },
    )
}

/// One server and its recent changes from the read model; `None` when it cannot answer.
pub(super) fn one(st: &AppState, id: &str) -> Option<Response> {
    match st.store.read_model().server_json(id) {
        Lookup::Found(body) => Some(json_bytes(body)),
        Lookup::NotFound => Some(error(
            StatusCode::NOT_FOUND,
            format!("no server with id {id:?}"),
        )),
        Lookup::Uncached => None,
    }
}
