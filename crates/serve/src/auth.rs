//! API keys: every `/v1` route needs `Authorization: Bearer <key>`; `/v1/admin` routes need an
//! admin key. What is compared are keyed 128-bit digests (SipHash under keys drawn at start-up,
//! unknown to clients), in constant time and against every key each time: the time taken says
//! nothing about which key matched, how much of one, or how long the keys are.

use std::sync::Arc;

use std::hash::{BuildHasher, Hasher};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// What a key opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The `/v1` routes.
    Api,
    /// The `/v1` and `/v1/admin` routes.
    Admin,
}

/// The configured keys, as digests.
#[derive(Debug, Clone)]
pub struct Keys {
    hashers: [std::collections::hash_map::RandomState; 2],
    keys: Vec<([u8; 16], Scope)>,
}

impl Keys {
    /// Keys from the configuration; at least one is required.
    pub fn new(config: &crate::config::ServeConfig) -> Result<Self, crate::Error> {
        let api = config.api_key.iter().chain(&config.api_keys);
        let admin = config.admin_key.iter().chain(&config.admin_keys);
        let keys: Vec<(&str, Scope)> = api
            .map(|k| (k.trim(), Scope::Api))
            .chain(admin.map(|k| (k.trim(), Scope::Admin)))
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
        let hashers = Default::default();
        let mut digested = Self {
            hashers,
            keys: Vec::new(),
        };
        digested.keys = keys
            .into_iter()
            .map(|(k, s)| (digested.digest(k.as_bytes()), s))
            .collect();
        Ok(digested)
    }

    fn digest(&self, bytes: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (half, hasher) in out.chunks_exact_mut(8).zip(&self.hashers) {
            let mut h = hasher.build_hasher();
            h.write(bytes);
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
        out
    }

    /// The widest scope of `token`, if it is a configured key.
    pub fn scope_of(&self, token: &[u8]) -> Option<Scope> {
        let token = self.digest(token);
        let (mut api, mut admin) = (subtle::Choice::from(0), subtle::Choice::from(0));
        for (key, scope) in &self.keys {
            let hit = key.ct_eq(&token);
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

/// Whether a request needs an admin key: `/v1/admin/…`, and the data-subject routes (a
/// contact's export and its erasure), which an ordinary scoring key must not reach.
fn needs_admin(method: &axum::http::Method, path: &str) -> bool {
    path.starts_with("/v1/admin")
        || *method == axum::http::Method::DELETE
        || (path.starts_with("/v1/contacts/") && path.ends_with("/export"))
}

/// Middleware on the `/v1` routes.
pub async fn require_key(
    State(keys): State<Arc<Keys>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let admin_route = needs_admin(request.method(), request.uri().path());
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 7235 §2.1).
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            ApiError::unauthorized("send the API key as `Authorization: Bearer <key>`")
        })?;
    match keys.scope_of(token.as_bytes()) {
        None => Err(ApiError::unauthorized("this API key is not configured")),
        Some(Scope::Api) if admin_route => Err(ApiError::forbidden(
            "admin routes need an admin key (serve.admin_key)",
        )),
        Some(_) => Ok(next.run(request).await),
    }
}
