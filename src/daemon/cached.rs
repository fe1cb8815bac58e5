//! The server reads of the API (`GET /api/v1/servers`, `GET /api/v1/servers/{id}`) answered
//! from the store's in-memory read model ([`crate::store::ReadModel`]), with the SQL path of
//! `api.rs` as the fallback whenever the model cannot answer (not ready, or a server whose
//! changes are too long to keep).
//!
//! A lookup by id and a small list are written on the runtime's worker: they are a hash
//! probe or an ordered walk plus a copy of bytes serialized at commit time, a few
//! microseconds, so handing them to the blocking pool (a wake-up and a context switch each
//! way, most of the old service time) would cost more than the work. A list larger than
//! [`INLINE_LIST_BYTES`] is streamed (chunked transfer encoding) in [`LIST_CHUNK_BYTES`]
//! chunks copied from the shared entries as the client reads them: an unfiltered list of
//! 10,000 servers (14 MiB) then never exists whole in memory, and 50 clients reading it hold
//! 50 chunks and their socket buffers, not 50 copies (the SQL path needed
//! [`super::api::MAX_CONCURRENT_LISTS`] to bound that, and still peaked near 0.5 GB).

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::api::{error, json_bytes, AppState};
use crate::store::{Lookup, ServerFilter};

/// Lists up to this size are written whole, with a `Content-Length` (about 50 µs of
/// copying); larger ones are streamed.
pub const INLINE_LIST_BYTES: usize = 256 * 1024;
/// Size of one chunk of a streamed list: one copy of this size per chunk, bounded memory
/// per client.
pub const LIST_CHUNK_BYTES: usize = 64 * 1024;

/// The list for `filter` from the read model; `None` when the model cannot answer.
pub(super) fn list(st: &AppState, filter: &ServerFilter) -> Option<Response> {
    let selection = st.store.read_model().servers(filter)?;
    if selection.bytes() <= INLINE_LIST_BYTES {
        return Some(json_bytes(selection.into_json()));
    }
    let chunks = selection
        .into_chunks(LIST_CHUNK_BYTES)
        .map(|c| Ok::<_, std::convert::Infallible>(Bytes::from(c)));
    Some(
        (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(futures_util::stream::iter(chunks)),
        )
            .into_response(),
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
