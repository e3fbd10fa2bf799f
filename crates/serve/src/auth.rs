//! API keys: every `/v1` route needs `Authorization: Bearer <key>`; `/v1/admin` routes need an
//! admin key. Keys are compared in constant time, and all of them are compared every time, so
//! timing says nothing about which key (or how much of one) matched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// What a key opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The `/v1` routes.
    Api,
    /// The `/v1` and `/v1/admin` routes.
    Admin,
}

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<(Vec<u8>, Scope)>,
}

impl Keys {
    /// Keys from the configuration; at least one is required.
    pub fn new(config: &augur_core::config::ServeConfig) -> Result<Self, crate::Error> {
        let api = config.api_key.iter().chain(&config.api_keys);
        let admin = config.admin_key.iter().chain(&config.admin_keys);
        let keys: Vec<(Vec<u8>, Scope)> = api
            .map(|k| (k, Scope::Api))
            .chain(admin.map(|k| (k, Scope::Admin)))
            .map(|(k, s)| (k.trim().as_bytes().to_vec(), s))
            .collect();
        if keys.is_empty() {
            return Err(crate::Error::Setup(
                "no API key configured: set serve.api_key in augur.toml or AUGUR_SERVE__API_KEY (and serve.admin_key / AUGUR_SERVE__ADMIN_KEY for reloads)".into(),
            ));
        }
        if let Some((k, _)) = keys.iter().find(|(k, _)| k.len() < 16) {
            return Err(crate::Error::Setup(format!(
                "an API key of {} characters is too easy to guess; use at least 16",
                k.len()
            )));
        }
        Ok(Self { keys })
    }

    /// The widest scope of `token`, if it is a configured key.
    pub fn scope_of(&self, token: &[u8]) -> Option<Scope> {
        let (mut api, mut admin) = (subtle::Choice::from(0), subtle::Choice::from(0));
        for (key, scope) in &self.keys {
            let hit = key.as_slice().ct_eq(token);
            match scope {
                Scope::Api => api |= hit,
                Scope::Admin => admin |= hit,
            }
        }
        if bool::from(admin) {
            Some(Scope::Admin)
        } else if bool::from(api) {
            Some(Scope::Api)
        } else {
            None
        }
    }
}

/// Middleware on the `/v1` routes.
pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let admin_route = request.uri().path().starts_with("/v1/admin");
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("send the API key as `Authorization: Bearer <key>`")
        })?;
    match state.keys.scope_of(token.as_bytes()) {
        None => Err(ApiError::unauthorized("this API key is not configured")),
        Some(Scope::Api) if admin_route => Err(ApiError::forbidden(
            "admin routes need an admin key (serve.admin_key)",
        )),
        Some(_) => Ok(next.run(request).await),
    }
}
