//! The `[campaigns]` section of `augur.toml`, and everything else a campaign run reads from it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use augur_data::ConfigFile;
use augur_segment::SegmentSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a campaign run reads from `augur.toml`: its own `[campaigns]` section, the data
/// sections (the tables it reads and appends `sent` events to) and the named segments its
/// audiences select on.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `[data]` and `[tables.*]`.
    pub data: augur_data::Config,
    /// `[campaigns]`.
    pub campaigns: CampaignsConfig,
    /// `[segments.<name>]`: named predictive segments next to the built-in ones.
    pub segments: BTreeMap<String, SegmentSpec>,
    /// The event store (`events.store`), whose contact changes and opt-outs apply on top of
    /// the exports; `None`: the exports alone.
    pub events: Option<PathBuf>,
    /// `[preferences]`: the contacts' own choices and the links to them.
    pub preferences: augur_consent::PreferencesConfig,
}

impl Settings {
    /// Reads the sections a campaign run needs from `file`.
    ///
    /// # Errors
    /// The data stage's configuration errors, or an invalid `[campaigns]` or `[segments]` value
    /// named by its dotted key.
    pub fn from_file(file: &ConfigFile) -> Result<Self> {
        Ok(Self {
            data: augur_data::Config::from_file(file)?,
            campaigns: CampaignsConfig::from_file(file)?,
            segments: file.section("segments")?,
            events: Some(
                augur_events::EventsConfig::from_file(file)
                    .map_err(|e| Error::Setting {
                        setting: "events".into(),
                        message: e.to_string(),
                    })?
                    .store,
            ),
            preferences: augur_consent::PreferencesConfig::from_file(file).map_err(|e| {
                Error::Setting {
                    setting: "preferences".into(),
                    message: e.to_string(),
                }
            })?,
        })
    }

    /// The preference store: `preferences.store`, or `preferences.sqlite` beside the outbox.
    pub fn preference_store(&self) -> PathBuf {
        self.preferences
            .store
            .clone()
            .unwrap_or_else(|| beside(&self.campaigns.outbox, "preferences.sqlite"))
    }
}

/// `name` in the folder of `file`.
fn beside(file: &std::path::Path, name: &str) -> PathBuf {
    file.parent()
        .map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
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

impl CampaignsConfig {
    /// Reads `[campaigns]` from `file`: relative paths resolved against the file's folder, every
    /// number checked against its range.
    ///
    /// # Errors
    /// An unknown key or a value out of range, named by its dotted key.
    pub fn from_file(file: &ConfigFile) -> Result<Self> {
        let mut config: Self = file.section("campaigns")?;
        file.resolve(&mut config.outbox);
        file.resolve(&mut config.eml_dir);
        if let Some(p) = &mut config.sent_events {
            file.resolve(p);
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let campaigns = self;
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
        Ok(())
    }
}

fn invalid(setting: &str, message: String) -> Error {
    Error::Setting {
        setting: setting.into(),
        message,
    }
}
