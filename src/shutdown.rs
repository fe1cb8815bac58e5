//! Shutdown: one [`CancellationToken`] that every long-lived task watches.
//!
//! The first SIGINT or SIGTERM cancels the token: engines stop issuing work and return what
//! they have, so a Ctrl-C'd scan still prints its findings. A second signal exits at once
//! (code 130), for when a user really means it.

use tokio_util::sync::CancellationToken;

/// Cancel `token` on the first SIGINT/SIGTERM; exit 130 on the second.
pub fn cancel_on_signal(token: CancellationToken) {
    cancel_on_signal_saying(
        token,
        "interrupted: finishing up and printing what was found (again to quit at once)",
    );
}

/// As [`cancel_on_signal`], logging `message` at the first signal.
pub fn cancel_on_signal_saying(token: CancellationToken, message: &'static str) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let Ok(mut int) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        else {
            return;
        };
        for n in 0..2 {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                tracing::warn!("{message}");
                token.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}
