//! The accept loop: HTTP/1.1 connections served by hyper with the limits a public socket needs.
//!
//! `axum::serve` sets no timer, so a client that sends half a request header holds its
//! connection (and a file descriptor) forever; twenty thousand of them stop the service. Here
//! every connection must finish its request header within `serve.header_read_timeout_seconds`,
//! at most `serve.max_connections` are open at once (one more is closed at once, so the service
//! keeps the descriptors it needs to answer), and on shutdown the listener closes while the
//! connections finish their requests in flight.
//!
//! The first request head of each connection is read here ([`head`]), so that a head hyper would
//! refuse with an empty body gets the documented JSON error.

mod head;

pub(crate) use head::refuse_oversized_head;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The limits of each connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a whole request header.
    pub header_read_timeout: Duration,
}

/// Accepts connections on `listener` and serves `router` on each until `stop` completes; then
/// closes the listener and returns a handle that completes when every connection has finished.
pub(crate) async fn accept_until(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    // Dropped when the listener closes: connections still waiting for their first request
    // close with it (no request of theirs is in flight).
    let (listening, closed) = tokio::sync::watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A client that half-closes after a whole request still gets its answer.
        .half_close(true)
        // Above augur's own limit, so that [`refuse_oversized_head`] answers first.
        .max_headers(2 * head::MAX_HEADERS);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            // Answers are small and written whole: no waiting for Nagle's algorithm.
            Ok((stream, peer)) => {
                stream.set_nodelay(true).ok();
                (stream, peer)
            }
            Err(e) => {
                // Out of descriptors or a reset before accept: wait a moment, never spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!("serve.max_connections reached; connection closed");
            continue;
        };
        let (stream, peer) = stream;
        // The peer address, for the per-address rate limit of `/u/{token}`.
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut r: hyper::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        ));
        let (http, watcher) = (http.clone(), graceful.watcher());
        let timeout = limits.header_read_timeout;
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let first = tokio::select! {
                first = tokio::time::timeout(timeout, head::read_first(&mut stream)) => first,
                _ = closed.changed() => return,
            };
            match first {
                Ok(head::FirstHead::Ready(read)) => {
                    let io = TokioIo::new(head::Replayed::new(read, stream));
                    if let Err(e) = watcher.watch(http.serve_connection(io, service)).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                Ok(head::FirstHead::Refused(error)) => head::refuse(stream, &error).await,
                Ok(head::FirstHead::Gone) | Err(_) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    drop(listening);
    graceful
}
