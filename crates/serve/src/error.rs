//! Errors: [`Error`] for what stops the service from starting or reloading, [`ApiError`] for
//! what a request gets back — one JSON shape, `{"error": {"code": …, "message": …}}`, and one
//! mapping of causes to status codes.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why the service cannot start or load a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model directory is missing, damaged or incompatible.
    #[error(transparent)]
    Model(#[from] Box<augur_model::Error>),
    /// The configuration file cannot be read.
    #[error(transparent)]
    Config(Box<augur_data::Error>),
    /// A value of `[serve]` cannot be used.
    #[error("configuration error in `{setting}`: {message}")]
    Setting {
        /// Dotted path of the setting, e.g. `serve.max_batch`.
        setting: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A configured segment does not compile against the model's fields.
    #[error("segments: {0}")]
    Segments(#[from] augur_segment::Error),
    /// A setting makes serving impossible.
    #[error("{0}")]
    Setup(String),
    /// The socket could not be opened or served.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<augur_data::Error> for Error {
    fn from(e: augur_data::Error) -> Self {
        Self::Config(Box::new(e))
    }
}

impl From<augur_model::Error> for Error {
    fn from(e: augur_model::Error) -> Self {
        Self::Model(Box::new(e))
    }
}

/// An error answer to a request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong and what would fix it.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404: the contact, segment or route does not exist.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 400: the request cannot be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: the request is readable but a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// 413: more than the configured limits.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 405: the route exists, the method does not.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    /// 401: no key, or a key that is not configured.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid key without the scope the route needs.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 409: the request refers to an older model (a paging cursor).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "stale_cursor", message)
    }

    /// 503: too many requests at once, or one that ran out of time.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
    }

    /// 500: the service failed (never a client's mistake).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl ApiError {
    /// The documented shape: `{"error": {"code": …, "message": …}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(self.body());
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(format!(
                "request body larger than the configured serve.max_body_bytes ({message})"
            )),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Self::invalid(message),
            _ => Self::bad_request(message),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<augur_segment::Error> for ApiError {
    /// The message already names where the rule is wrong (`rule`, `rule.all[1]`, …).
    fn from(e: augur_segment::Error) -> Self {
        Self::invalid(e.to_string())
    }
}
