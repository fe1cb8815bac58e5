//! Serving the API: an accept loop over hyper's HTTP/1 connection builder.
//!
//! `axum::serve` sets no header-read timeout, so a client stalled mid-headers could hold a
//! connection, and graceful shutdown, forever. Here each connection gets hyper's
//! `header_read_timeout`, the number of connections is capped (a client beyond the cap is
//! closed at once, so API clients cannot take the descriptors the scanner needs), and on
//! shutdown every connection is asked to finish its current request, with a deadline.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long open connections get to finish after shutdown starts.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(3);

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client gets to send its request headers.
    pub header_timeout: Duration,
}

/// Serve `router` on `listener` until `shutdown`, then drain.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("api: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                "api: {} connections open (api.max_connections); closing a new one",
                limits.max_connections
            );
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let stop = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, "api connection: {e}");
                    }
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_DEADLINE, conn).await;
                }
            }
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_DEADLINE + Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}
