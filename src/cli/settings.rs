//! The whole `augur.toml`, assembled from the sections each stage owns: `[data]` and
//! `[tables.*]` (augur-data), `[serve]` (augur-serve), `[campaigns]` (augur-campaign) and
//! `[segments.*]` (augur-segment). Every subcommand reads all of them, so that a misspelt key
//! anywhere is reported by whichever command meets it first.

use std::collections::BTreeMap;
use std::path::Path;

use augur_data::{ConfigFile, ConfigSource};
use augur_segment::SegmentSpec;
use augur_serve::ServeConfig;

/// The sections of `augur.toml`; any other top-level key is an error.
const SECTIONS: [&str; 7] = [
    "data",
    "tables",
    "serve",
    "segments",
    "campaigns",
    "events",
    "preferences",
];

/// Every stage's settings, read from one configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the configuration came from.
    pub source: ConfigSource,
    /// `[data]` and `[tables.*]`.
    pub data: augur_data::Config,
    /// `[serve]`.
    pub serve: ServeConfig,
    /// `[segments.*]`.
    pub segments: BTreeMap<String, SegmentSpec>,
    /// `[campaigns]`.
    pub campaigns: augur_campaign::CampaignsConfig,
    /// `[events]`.
    pub events: augur_events::EventsConfig,
    /// `[preferences]`.
    pub preferences: augur_consent::PreferencesConfig,
}

impl Settings {
    /// Reads `path` (or `./augur.toml`, or the embedded defaults) with its environment
    /// overrides, and every section from it.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = ConfigFile::open(path)?;
        file.check_sections(&SECTIONS)?;
        Ok(Self {
            source: file.source().clone(),
            data: augur_data::Config::from_file(&file)?,
            serve: ServeConfig::from_file(&file)?,
            segments: file.section("segments")?,
            campaigns: augur_campaign::CampaignsConfig::from_file(&file)?,
            events: augur_events::EventsConfig::from_file(&file)?,
            preferences: augur_consent::PreferencesConfig::from_file(&file)?,
        })
    }

    /// Adds, to an error reading the exports, that the embedded demo defaults were used and what
    /// to do instead: a newcomer who runs `augur train` in an empty folder learns why it looks
    /// for `data/demo`.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        if self.source == ConfigSource::Embedded {
            error.context(
                "no configuration given (no --config, AUGUR_CONFIG or ./augur.toml), so the embedded \
                 demo defaults were used, which read data/demo; run `augur demo` to write and use the \
                 demo data, or point --config at an augur.toml that names your exports",
            )
        } else {
            error
        }
    }

    /// What a campaign run reads.
    pub fn campaign(&self) -> augur_campaign::Settings {
        augur_campaign::Settings {
            data: self.data.clone(),
            campaigns: self.campaigns.clone(),
            segments: self.segments.clone(),
            events: Some(self.events.store.clone()),
            preferences: self.preferences.clone(),
        }
    }
}
