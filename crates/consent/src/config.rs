//! The `[preferences]` section of `augur.toml`: where the preference store lives, the public
//! address links point at, the topics contacts choose among, and the keys that sign links.

use std::path::PathBuf;

use augur_data::ConfigFile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Contacts' own controls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreferencesConfig {
    /// The preference store (SQLite); absent = `preferences.sqlite` beside the outbox.
    pub store: Option<PathBuf>,
    /// Where `augur serve` is reachable from the contacts' mail clients, e.g.
    /// `https://mail.shop.example`. Messages then carry `<public_url>/u/<token>` as their
    /// one-click unsubscribe and preference link (unless `campaigns.unsubscribe_url` names
    /// an endpoint of the shop's own).
    pub public_url: Option<String>,
    /// The kinds of e-mail a contact may turn off one by one; campaigns and flows name theirs
    /// with `topic`.
    pub topics: Vec<Topic>,
    /// Keys that sign links. The first one without `retired` signs; the others still verify
    /// links for `key_grace_days` after their `retired` instant. Empty = one key generated and
    /// kept in the preference store.
    pub keys: Vec<SigningKey>,
    /// Days a retired key still verifies the links it signed.
    pub key_grace_days: f64,
    /// Days a link works after its message was planned.
    pub link_days: f64,
    /// Days the page's "pause" stops every message.
    pub pause_days: f64,
    /// Requests to `/u/…` one client address may make per minute (page views, form posts, and
    /// any request whose token does not verify); more get 429. Valid one-click posts are not
    /// counted: mail providers send them for all their users from a few addresses.
    pub requests_per_minute: u32,
}

impl Default for PreferencesConfig {
    fn default() -> Self {
        Self {
            store: None,
            public_url: None,
            topics: Vec::new(),
            keys: Vec::new(),
            key_grace_days: 30.0,
            link_days: 365.0,
            pause_days: 30.0,
            requests_per_minute: 60,
        }
    }
}

/// A kind of e-mail a contact can turn off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// What campaign and flow files name (`a-z`, `0-9`, `_`, `-`).
    pub id: String,
    /// What the preference page shows, e.g. "Offers and discounts".
    pub name: String,
}

/// A key that signs or verifies links.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Named in every link it signs (`A-Z`, `a-z`, `0-9`, `_`, `-`), so that the right key
    /// verifies it after a rotation.
    pub id: String,
    /// The secret, at least 16 bytes (set it through the environment, not the file).
    pub secret: String,
    /// When it stopped signing; it verifies for `key_grace_days` after.
    pub retired: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

/// Whether `s` is a non-empty id of the given extra characters and ASCII letters and digits.
pub(crate) fn is_id(s: &str, upper: bool) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'_'
                || b == b'-'
                || (upper && b.is_ascii_uppercase())
        })
}

impl PreferencesConfig {
    /// Reads `[preferences]` from `file`, its store path resolved against the configuration's
    /// folder.
    ///
    /// # Errors
    /// An unknown key or an unusable value, named by its dotted key.
    pub fn from_file(file: &ConfigFile) -> Result<Self> {
        let mut config: Self = file.section("preferences")?;
        if let Some(store) = config.store.as_mut() {
            file.resolve(store);
        }
        config.check()?;
        Ok(config)
    }

    /// Checks every value.
    ///
    /// # Errors
    /// The first unusable value, by its dotted key.
    pub fn check(&self) -> Result<()> {
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(Error::setting(
                "preferences.public_url",
                format!(
                    "`{url}`: use an http:// or https:// address, e.g. https://mail.shop.example"
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.topics.iter().enumerate() {
            if !is_id(&t.id, false) || !seen.insert(t.id.as_str()) {
                return Err(Error::setting(
                    format!("preferences.topics[{i}].id"),
                    format!("`{}`: use a unique id of a-z, 0-9, _ and -", t.id),
                ));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            if !is_id(&k.id, true) || !ids.insert(k.id.as_str()) {
                return Err(Error::setting(
                    format!("preferences.keys[{i}].id"),
                    format!("`{}`: use a unique id of letters, digits, _ and -", k.id),
                ));
            }
            if k.secret.len() < 16 {
                return Err(Error::setting(
                    format!("preferences.keys[{i}].secret"),
                    "shorter than 16 bytes; use a long random value",
                ));
            }
        }
        if !self.keys.is_empty() && self.keys.iter().all(|k| k.retired.is_some()) {
            return Err(Error::setting(
                "preferences.keys",
                "every key is retired; add a key without `retired` to sign new links",
            ));
        }
        for (name, v) in [
            ("key_grace_days", self.key_grace_days),
            ("link_days", self.link_days),
            ("pause_days", self.pause_days),
        ] {
            if !v.is_finite() || v <= 0.0 || v > 3650.0 {
                return Err(Error::setting(
                    format!("preferences.{name}"),
                    format!("{v}: use a number of days above 0 and at most 3650"),
                ));
            }
        }
        if self.requests_per_minute == 0 {
            return Err(Error::setting(
                "preferences.requests_per_minute",
                "must be 1 or more",
            ));
        }
        Ok(())
    }

    /// The topic named `id`, if configured.
    pub fn topic(&self, id: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.id == id)
    }
}
