//! `augur.toml`: where each table lives, how its columns map onto the contract, and how to read
//! its values; environment variables override any setting.
//!
//! Precedence: `--config FILE` (or `AUGUR_CONFIG`), else `./augur.toml`, else the embedded defaults
//! (the demo data under `data/demo`). Then every `AUGUR_<SECTION>__<KEY>` variable overrides the
//! matching setting, e.g. `AUGUR_DATA__TIMEZONE=Europe/Berlin` or
//! `AUGUR_TABLES__ORDERS__PATH=/exports/orders`. Relative table paths are resolved against the
//! directory of the configuration file (the working directory for the embedded defaults).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::contract::{EmailEventKind, TableKind, WebEventKind};
use crate::error::{Error, Result};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../augur.default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Settings that apply to every table.
    pub data: DataConfig,
    /// One section per input table.
    pub tables: TablesConfig,
    /// The HTTP service (`augur serve`).
    pub serve: ServeConfig,
    /// Named predictive segments (`[segments.<name>]` with `description` and `rule`), next to
    /// the built-in lifecycle segments; see `docs/segments.md`.
    pub segments: BTreeMap<String, augur_segment::SegmentSpec>,
    /// Predictive campaigns (`augur campaign`): outbox, delivery and links.
    pub campaigns: CampaignsConfig,
}

/// Predictive campaigns. Secrets usually come from the environment:
/// `AUGUR_CAMPAIGNS__SMTP__PASSWORD=…` and `AUGUR_CAMPAIGNS__SIGNING_KEY=…`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignsConfig {
    /// The outbox: an SQLite database of every planned message and its outcome.
    pub outbox: PathBuf,
    /// Without `[campaigns.smtp]`, messages are delivered as `.eml` files into this directory.
    pub eml_dir: PathBuf,
    /// The SMTP relay; absent = deliver to `eml_dir`.
    pub smtp: Option<SmtpConfig>,
    /// Delivery pace limit, messages per second.
    pub messages_per_second: f64,
    /// SMTP connections used at once (also the most messages in flight).
    pub connections: usize,
    /// Attempts per message before a transient failure counts as failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles with each attempt, at most an hour.
    pub retry_seconds: f64,
    /// What to do with a message whose SMTP outcome is unknown after a crash.
    pub unknown_outcome: UnknownOutcome,
    /// One-click unsubscribe endpoint (RFC 8058); the signed `contact`, `campaign` and `sig`
    /// parameters are appended.
    pub unsubscribe_url: Option<String>,
    /// Address for `mailto:` unsubscribes; default `unsubscribe@<sender's domain>`.
    pub unsubscribe_mailto: Option<String>,
    /// HMAC key signing unsubscribe links; absent = one generated and kept in the outbox.
    pub signing_key: Option<String>,
    /// Directory that `sent` rows are appended to as Parquet files, so the next training sees
    /// them; default: the e-mail events table's directory.
    pub sent_events: Option<PathBuf>,
    /// Orders this many days after a send are attributed to it in reports.
    pub attribution_days: f64,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        Self {
            outbox: PathBuf::from("outbox/augur.sqlite"),
            eml_dir: PathBuf::from("outbox/eml"),
            smtp: None,
            messages_per_second: 200.0,
            connections: 4,
            max_attempts: 8,
            retry_seconds: 60.0,
            unknown_outcome: UnknownOutcome::Hold,
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            signing_key: None,
            sent_events: None,
            attribution_days: 7.0,
        }
    }
}

/// What the sender does, on start, with messages that were being sent when it stopped abruptly:
/// the SMTP server may or may not have accepted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOutcome {
    /// Mark them `unknown` and report them; never risk a second copy (the default).
    #[default]
    Hold,
    /// Send them again: none is lost, at the risk of a duplicate.
    Resend,
}

/// An SMTP relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// Port; default 25 without TLS, 587 with STARTTLS, 465 with TLS.
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name for AUTH.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Option<String>,
    /// Per-command timeout, seconds.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: f64,
}

fn default_smtp_timeout() -> f64 {
    30.0
}

/// Transport security towards the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text (a relay on localhost).
    None,
    /// STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

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
        }
    }
}

/// Settings that apply to every table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// IANA zone in which naive timestamps (no offset, no zone) are read.
    pub timezone: String,
    /// Zone for contacts with neither a valid time zone nor a known country.
    pub default_contact_timezone: String,
    /// Rows per Arrow record batch while reading.
    pub batch_size: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            default_contact_timezone: "UTC".into(),
            batch_size: 64 * 1024,
        }
    }
}

/// One section per input table; a table without `path` is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TablesConfig {
    /// `[tables.contacts]`
    pub contacts: TableConfig,
    /// `[tables.products]`
    pub products: TableConfig,
    /// `[tables.orders]`
    pub orders: TableConfig,
    /// `[tables.email_events]`
    pub email_events: TableConfig,
    /// `[tables.web_events]`
    pub web_events: TableConfig,
}

impl TablesConfig {
    /// The section of one table.
    pub fn get(&self, kind: TableKind) -> &TableConfig {
        match kind {
            TableKind::Contacts => &self.contacts,
            TableKind::Products => &self.products,
            TableKind::Orders => &self.orders,
            TableKind::EmailEvents => &self.email_events,
            TableKind::WebEvents => &self.web_events,
        }
    }

    fn get_mut(&mut self, kind: TableKind) -> &mut TableConfig {
        match kind {
            TableKind::Contacts => &mut self.contacts,
            TableKind::Products => &mut self.products,
            TableKind::Orders => &mut self.orders,
            TableKind::EmailEvents => &mut self.email_events,
            TableKind::WebEvents => &mut self.web_events,
        }
    }
}

/// Unit of integer or float epoch timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

/// Where one table lives and how to read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableConfig {
    /// A Parquet file, or a directory of Parquet files (searched recursively; hive-style
    /// `key=value` folders supply columns missing from the files).
    pub path: Option<PathBuf>,
    /// Contract field → source column, for exports with foreign column names.
    pub columns: BTreeMap<String, String>,
    /// `strftime` format for timestamps stored as strings or integers (e.g. `%m/%d/%Y %H:%M` or
    /// `%Y%m%d`). Without it, strings are read as ISO-8601 and integers as epochs.
    pub timestamp_format: Option<String>,
    /// Unit of epoch timestamps; without it the unit is inferred from the magnitude.
    pub timestamp_unit: Option<EpochUnit>,
    /// Zone for this table's naive timestamps, overriding `data.timezone`.
    pub timezone: Option<String>,
    /// Raw event value → contract event (`"Opened" = "open"`), checked before the built-in synonyms.
    pub event_values: BTreeMap<String, String>,
    /// Orders: order ids starting with this prefix are cancellations; their lines count as returns.
    pub cancelled_order_prefix: Option<String>,
    /// Orders: product codes that are not products (postage, fees, discounts); such lines are dropped.
    pub exclude_products: Vec<String>,
    /// Orders: a regular expression; product codes matching it are dropped like `exclude_products`.
    pub exclude_product_pattern: Option<String>,
}

impl TableConfig {
    /// The source column of a contract field: the mapping, else the field's own name.
    pub fn column_for<'a>(&'a self, field: &'a str) -> &'a str {
        self.columns.get(field).map_or(field, String::as_str)
    }

    /// Whether the user mapped this field explicitly (then a missing column is an error even
    /// for optional fields).
    pub fn is_mapped(&self, field: &str) -> bool {
        self.columns.contains_key(field)
    }
}

/// Where the configuration came from, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk.
    File(PathBuf),
    /// The embedded defaults.
    Embedded,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Embedded => f.write_str("embedded defaults"),
        }
    }
}

impl Config {
    /// Loads the configuration: `path` if given, else `./augur.toml` if it exists, else the
    /// embedded defaults; then applies `AUGUR_*__*` environment overrides and checks the values.
    pub fn load(path: Option<&Path>) -> Result<(Self, ConfigSource)> {
        let local = Path::new("augur.toml");
        let (figment, source, base) = match path {
            Some(p) => {
                if !p.is_file() {
                    return Err(Error::Config(format!(
                        "{}: no such configuration file",
                        p.display()
                    )));
                }
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (
                    Figment::from(Toml::file_exact(p)),
                    ConfigSource::File(p.to_path_buf()),
                    base,
                )
            }
            None if local.is_file() => (
                Figment::from(Toml::file_exact(local)),
                ConfigSource::File(local.to_path_buf()),
                PathBuf::new(),
            ),
            None => (
                Figment::from(Toml::string(DEFAULT_CONFIG)),
                ConfigSource::Embedded,
                PathBuf::new(),
            ),
        };
        let figment = figment.merge(
            Env::prefixed("AUGUR_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| Error::Config(e.to_string()))?;
        config.resolve_paths(&base);
        config.check()?;
        Ok((config, source))
    }

    /// Parses a configuration from TOML text (no environment overrides), resolving relative
    /// paths against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self> {
        let mut config: Config = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| Error::Config(e.to_string()))?;
        config.resolve_paths(base);
        config.check()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() && !base.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.campaigns.outbox);
        join(&mut self.campaigns.eml_dir);
        if let Some(p) = &mut self.campaigns.sent_events {
            join(p);
        }
        for kind in TableKind::ALL {
            let table = self.tables.get_mut(kind);
            if let Some(p) = &table.path
                && p.is_relative()
                && !base.as_os_str().is_empty()
            {
                table.path = Some(base.join(p));
            }
        }
    }

    /// The zone for naive timestamps of a table.
    pub fn naive_zone(&self, kind: TableKind) -> Tz {
        let name = self
            .tables
            .get(kind)
            .timezone
            .as_deref()
            .unwrap_or(&self.data.timezone);
        Tz::from_str(name).unwrap_or(Tz::UTC)
    }

    /// The fallback zone for contacts.
    pub fn default_contact_zone(&self) -> Tz {
        Tz::from_str(&self.data.default_contact_timezone).unwrap_or(Tz::UTC)
    }

    /// Checks every value that serde cannot: zone names, field names, patterns, event values.
    fn check(&self) -> Result<()> {
        check_zone("data.timezone", &self.data.timezone)?;
        check_zone(
            "data.default_contact_timezone",
            &self.data.default_contact_timezone,
        )?;
        if self.data.batch_size == 0 {
            return Err(invalid("data.batch_size", "must be at least 1".into()));
        }
        let campaigns = &self.campaigns;
        if campaigns.connections == 0 || campaigns.max_attempts == 0 {
            return Err(invalid(
                "campaigns.connections / campaigns.max_attempts",
                "must be at least 1".into(),
            ));
        }
        let timeout = campaigns.smtp.as_ref().map_or(30.0, |s| s.timeout_seconds);
        for (setting, value, max) in [
            (
                "campaigns.messages_per_second",
                campaigns.messages_per_second,
                1e6,
            ),
            ("campaigns.retry_seconds", campaigns.retry_seconds, 86_400.0),
            (
                "campaigns.attribution_days",
                campaigns.attribution_days,
                3_650.0,
            ),
            ("campaigns.smtp.timeout_seconds", timeout, 3_600.0),
        ] {
            if !value.is_finite() || !(0.001..=max).contains(&value) {
                return Err(invalid(
                    setting,
                    format!("must be a number from 0.001 to {max}, not {value}"),
                ));
            }
        }
        let serve = &self.serve;
        for (setting, value) in [
            ("serve.max_batch", serve.max_batch),
            ("serve.max_body_bytes", serve.max_body_bytes),
            (
                "serve.max_concurrent_requests",
                serve.max_concurrent_requests,
            ),
            ("serve.max_page", serve.max_page),
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
        ] {
            if !value.is_finite() || value < 0.0 || (value == 0.0 && setting.contains("timeout")) {
                return Err(invalid(
                    setting,
                    format!("`{value}` is not a usable number of seconds"),
                ));
            }
        }
        for kind in TableKind::ALL {
            let table = self.tables.get(kind);
            let name = kind.name();
            if let Some(zone) = &table.timezone {
                check_zone(&format!("tables.{name}.timezone"), zone)?;
            }
            for field in table.columns.keys() {
                if kind.field(field).is_none() {
                    let known: Vec<_> = kind.fields().iter().map(|f| f.name).collect();
                    return Err(invalid(
                        &format!("tables.{name}.columns.{field}"),
                        format!(
                            "`{field}` is not a field of {name}; fields: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
            if let Some(pattern) = &table.exclude_product_pattern {
                regex::Regex::new(pattern).map_err(|e| {
                    invalid(
                        &format!("tables.{name}.exclude_product_pattern"),
                        e.to_string(),
                    )
                })?;
            }
            for (raw, target) in &table.event_values {
                let known = match kind {
                    TableKind::EmailEvents => EmailEventKind::parse(target).is_some(),
                    TableKind::WebEvents => WebEventKind::parse(target).is_some(),
                    _ => false,
                };
                if !known {
                    return Err(invalid(
                        &format!("tables.{name}.event_values"),
                        format!("`{raw}` maps to `{target}`, which is not an event of {name}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tables that have a path.
    pub fn configured_tables(&self) -> Vec<TableKind> {
        TableKind::ALL
            .into_iter()
            .filter(|k| self.tables.get(*k).path.is_some())
            .collect()
    }
}

fn check_zone(setting: &str, zone: &str) -> Result<()> {
    Tz::from_str(zone).map(|_| ()).map_err(|_| {
        invalid(
            setting,
            format!("`{zone}` is not an IANA time zone (e.g. Europe/Berlin, UTC)"),
        )
    })
}

fn invalid(setting: &str, message: String) -> Error {
    Error::InvalidSetting {
        setting: setting.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let config = Config::from_toml(DEFAULT_CONFIG, Path::new("")).expect("defaults parse");
        assert_eq!(config.configured_tables().len(), 5);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Config::from_toml(
            "[tables.orders.columns]\ncustomer = \"CustomerID\"\n",
            Path::new(""),
        )
        .expect_err("unknown field");
        let text = err.to_string();
        assert!(text.contains("tables.orders.columns.customer"), "{text}");
        assert!(text.contains("contact_id"), "{text}");
    }

    #[test]
    fn typo_in_section_is_rejected() {
        let err =
            Config::from_toml("[data]\ntimezon = \"UTC\"\n", Path::new("")).expect_err("typo");
        assert!(err.to_string().contains("timezon"), "{err}");
    }

    #[test]
    fn bad_zone_is_rejected() {
        let err = Config::from_toml("[data]\ntimezone = \"Mars/Olympus\"\n", Path::new(""))
            .expect_err("bad zone");
        assert!(err.to_string().contains("data.timezone"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Config::from_toml(
            "[tables.orders]\npath = \"o.parquet\"\n",
            Path::new("/exports"),
        )
        .expect("ok");
        assert_eq!(
            config.tables.orders.path.as_deref(),
            Some(Path::new("/exports/o.parquet"))
        );
    }
}
