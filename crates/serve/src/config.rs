//! The `[serve]` section of `augur.toml`.

use augur_data::ConfigFile;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The HTTP service. Keys usually come from the environment:
/// `AUGUR_SERVE__API_KEY=…` and `AUGUR_SERVE__ADMIN_KEY=…`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: String,
    /// A key for the `/v1` routes (`Authorization: Bearer …`).
    pub api_key: Option<String>,
    /// More keys for the `/v1` routes (e.g. one per client, to rotate them one at a time).
    pub api_keys: Vec<String>,
    /// A key for the admin routes (it also opens every `/v1` route).
    pub admin_key: Option<String>,
    /// More admin keys.
    pub admin_keys: Vec<String>,
    /// Most contact ids in one `POST /v1/score`.
    pub max_batch: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once; more are answered 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// A request running longer is answered 503.
    pub request_timeout_seconds: f64,
    /// How often `models/current` is checked for a newer model (0: never; reload by
    /// `POST /v1/admin/reload`).
    pub reload_poll_seconds: f64,
    /// Most rows in one page of a segment listing when `limit` is given.
    pub max_page: usize,
    /// After the shutdown signal, keep answering this long with `/readyz` at 503 before the
    /// listener closes, so that a load balancer stops sending traffic first (set it a little
    /// above the balancer's readiness interval).
    pub shutdown_delay_seconds: f64,
    /// Connections open at once; one more is closed at once, so that slow or idle clients
    /// cannot take every file descriptor.
    pub max_connections: usize,
    /// A client must send a whole request header within this time, or its connection closes.
    pub header_read_timeout_seconds: f64,
    /// Most work one segment preview may ask for: the rule's nodes times the model's contacts
    /// (about 10 ns each); a larger rule is refused with 422 before any work.
    pub max_rule_work: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            api_key: None,
            api_keys: Vec::new(),
            admin_key: None,
            admin_keys: Vec::new(),
            max_batch: 10_000,
            max_body_bytes: 2 << 20,
            max_concurrent_requests: 512,
            request_timeout_seconds: 30.0,
            reload_poll_seconds: 5.0,
            max_page: 100_000,
            shutdown_delay_seconds: 0.0,
            max_connections: 4096,
            header_read_timeout_seconds: 10.0,
            max_rule_work: 500_000_000,
        }
    }
}

impl ServeConfig {
    /// Reads `[serve]` from `file` and checks every value.
    ///
    /// # Errors
    /// An unknown key, or a value that cannot be used, named by its dotted key.
    pub fn from_file(file: &ConfigFile) -> Result<Self, Error> {
        let config: Self = file.section("serve")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), Error> {
        let serve = self;
        for (setting, value) in [
            ("serve.max_batch", serve.max_batch),
            ("serve.max_body_bytes", serve.max_body_bytes),
            (
                "serve.max_concurrent_requests",
                serve.max_concurrent_requests,
            ),
            ("serve.max_page", serve.max_page),
            ("serve.max_connections", serve.max_connections),
            ("serve.max_rule_work", serve.max_rule_work),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1".into()));
            }
        }
        for (setting, value) in [
            (
                "serve.request_timeout_seconds",
                serve.request_timeout_seconds,
            ),
            ("serve.reload_poll_seconds", serve.reload_poll_seconds),
            ("serve.shutdown_delay_seconds", serve.shutdown_delay_seconds),
            (
                "serve.header_read_timeout_seconds",
                serve.header_read_timeout_seconds,
            ),
        ] {
            if !value.is_finite() || value < 0.0 || (value == 0.0 && setting.contains("timeout")) {
                return Err(invalid(
                    setting,
                    format!("`{value}` is not a usable number of seconds"),
                ));
            }
        }
        Ok(())
    }
}

fn invalid(setting: &str, message: String) -> Error {
    Error::Setting {
        setting: setting.into(),
        message,
    }
}
