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
mod events;
mod listen;
mod metrics;
mod ops;
mod preferences;
mod privacy;
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
pub use events::Events;
pub use preferences::Preferences;
pub use privacy::ContactRecords;
pub use state::AppState;

/// The routes, with auth on `/v1`, body and concurrency limits, timeouts and metrics.
pub fn router(state: Arc<AppState>) -> Router {
    let config = &state.config;
    let v1 = Router::new()
        .route(
            routes::CONTACT,
            get(contacts::get_contact).delete(privacy::forget),
        )
        .route(routes::EXPORT, get(privacy::export))
        .route(routes::RECOMMENDATIONS, get(contacts::get_recommendations))
        .route(routes::SEND_TIME, get(contacts::get_send_time))
        .route(routes::SCORE, post(contacts::post_score))
        .route(routes::SEGMENTS, get(segments::list))
        .route(routes::PREVIEW, post(segments::preview))
        .route(routes::SEGMENT_CONTACTS, get(segments::contacts))
        .route(routes::EVENTS, post(events::post_events))
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
    let limited = Router::new()
        .route(routes::METRICS, get(ops::metrics))
        .route(routes::OPENAPI, get(ops::openapi))
        .route(
            routes::PREFERENCES,
            get(preferences::page).post(preferences::post),
        )
        .merge(v1)
        .fallback(|| async {
            ApiError::not_found("unknown_route", "no such route; see /openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("this route does not take this method; see /openapi.json")
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
        );
    // Liveness and readiness answer outside the concurrency limit: a load balancer that finds
    // the service busy must not also find it dead.
    Router::new()
        .route(routes::HEALTHZ, get(ops::healthz))
        .route(routes::READYZ, get(ops::readyz))
        .merge(limited)
        // Outermost: a body declared too large is refused before it takes a permit or is read.
        .layer(axum::middleware::from_fn_with_state(
            config.max_body_bytes,
            refuse_declared_oversize,
        ))
        .layer(axum::middleware::from_fn(listen::refuse_oversized_head))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Answers 413 at once to a request whose `Content-Length` is over `serve.max_body_bytes`,
/// instead of waiting for a body it would refuse anyway.
async fn refuse_declared_oversize(
    axum::extract::State(max): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max as u64 => {
            // The body is never read, so the connection cannot carry another request: say so.
            let mut response = ApiError::too_large(format!(
                "the body declares {n} bytes; serve.max_body_bytes allows {max}"
            ))
            .into_response();
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
        _ => next.run(request).await,
    }
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
    tokio::spawn(state.clone().watch());
    if let Some(prefs) = state.preferences.clone() {
        // Erasures made by another process (`augur contacts forget`) reach every answer within
        // a second; this service's own `DELETE` applies at once.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let prefs = prefs.clone();
                let _ = tokio::task::spawn_blocking(move || prefs.refresh()).await;
            }
        });
    }
    let limits = listen::Limits {
        max_connections: state.config.max_connections,
        header_read_timeout: Duration::from_secs_f64(state.config.header_read_timeout_seconds),
    };
    let draining = state.clone();
    let stop = async move {
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
    };
    let connections = listen::accept_until(listener, router(state), limits, stop).await;
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running {}s after the shutdown signal; stopping", SHUTDOWN_GRACE.as_secs());
        }
    }
    Ok(())
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
