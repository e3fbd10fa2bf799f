//! The `[events]` section of `augur.toml`.

use std::path::PathBuf;

use augur_data::ConfigFile;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Live events (`POST /v1/events`) and the store they are kept in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The event store: an SQLite database (relative to the configuration file).
    pub store: PathBuf,
    /// Most events in one `POST /v1/events`.
    pub max_batch: usize,
    /// Events dated further than this into the future (seconds, by the receiver's clock) are
    /// refused: a clock that far off would schedule series steps in the past.
    pub max_future_seconds: i64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            store: PathBuf::from("events/augur-events.sqlite"),
            max_batch: 1000,
            max_future_seconds: 3600,
        }
    }
}

impl EventsConfig {
    /// Reads `[events]` from `file`, its path resolved against the configuration's folder.
    ///
    /// # Errors
    /// An unknown key or an unusable value, named by its dotted key.
    pub fn from_file(file: &ConfigFile) -> Result<Self> {
        let mut config: Self = file.section("events")?;
        file.resolve(&mut config.store);
        if config.max_batch == 0 || config.max_batch > 100_000 {
            return Err(Error::Setting {
                setting: "events.max_batch".into(),
                message: format!("{}: use 1 to 100000 events", config.max_batch),
            });
        }
        if config.max_future_seconds < 0 {
            return Err(Error::Setting {
                setting: "events.max_future_seconds".into(),
                message: "must be 0 or more".into(),
            });
        }
        Ok(config)
    }
}
