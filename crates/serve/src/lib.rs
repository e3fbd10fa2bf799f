//! # augur-serve
//!
//! The HTTP service: answers from a trained model directory (the models and the contact
//! snapshot) through the same scoring path as `augur score`, so the two never disagree.
//! Replicas hold no state of their own; scale out by running more behind a load balancer.
//!
//! Flow: [`AppState::new`] loads and checks the model (before any port opens), [`router`]
//! builds the routes, [`serve`] answers until the shutdown signal, finishing requests in flight.

mod auth;
mod config;
mod contacts;
mod error;
mod metrics;
mod ops;
pub mod routes;
mod segments;
mod state;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower::ServiceBuilder;

pub use config::ServeConfig;
pub use error::{ApiError, Error};
pub use state::AppState;

/// The routes, with auth on `/v1`, body and concurrency limits, timeouts and metrics.
pub fn router(state: Arc<AppState>) -> Router {
    let config = &state.config;
    let v1 = Router::new()
        .route(routes::CONTACT, get(contacts::get_contact))
        .route(routes::RECOMMENDATIONS, get(contacts::get_recommendations))
        .route(routes::SEND_TIME, get(contacts::get_send_time))
        .route(routes::SCORE, post(contacts::post_score))
        .route(routes::SEGMENTS, get(segments::list))
        .route(routes::PREVIEW, post(segments::preview))
        .route(routes::SEGMENT_CONTACTS, get(segments::contacts))
        .route(routes::RELOAD, post(ops::reload))
        .route_layer(axum::middleware::from_fn_with_state(
            state.keys.clone(),
            auth::require_key,
        ));
    let overload = |e: tower::BoxError| async move {
        if e.is::<tower::timeout::error::Elapsed>() {
            ApiError::overloaded("the request took longer than serve.request_timeout_seconds")
        } else {
            ApiError::overloaded(
                "too many requests at once (serve.max_concurrent_requests); retry shortly",
            )
        }
    };
    Router::new()
        .route(routes::HEALTHZ, get(ops::healthz))
        .route(routes::READYZ, get(ops::readyz))
        .route(routes::METRICS, get(ops::metrics))
        .route(routes::OPENAPI, get(ops::openapi))
        .merge(v1)
        .fallback(|| async {
            ApiError::not_found("unknown_route", "no such route; see /openapi.json")
        })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overload))
                .load_shed()
                // One semaphore for the whole service (a per-route limit would multiply it).
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    config.max_concurrent_requests,
                ))
                .timeout(Duration::from_secs_f64(config.request_timeout_seconds)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// How long requests in flight may run on after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Answers on `listener` until `shutdown` completes, then lets requests in flight finish (for
/// at most [`SHUTDOWN_GRACE`]: a stalled client cannot keep the process alive).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use std::future::IntoFuture as _;
    tokio::spawn(state.clone().watch());
    let (signalled, mut on_signal) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    let graceful = async move {
        shutdown.await;
        draining.start_draining();
        let delay = draining.config.shutdown_delay_seconds;
        if delay > 0.0 {
            tracing::info!(
                seconds = delay,
                "shutting down: /readyz answers 503 until the listener closes"
            );
            tokio::time::sleep(Duration::from_secs_f64(delay)).await;
        }
        let _ = signalled.send(true);
    };
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(graceful)
        .into_future();
    let deadline = async move {
        let _ = on_signal.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.map_err(|source| Error::Io {
            what: "serving HTTP".into(),
            source,
        }),
        () = deadline => {
            tracing::warn!("requests still running {}s after the shutdown signal; stopping", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
