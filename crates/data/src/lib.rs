//! # augur-data
//!
//! The data contract of augur and the first stage of its flow: the data sections of
//! `augur.toml` (with environment overrides), reading Parquet exports into a columnar
//! [`History`] with dense integer ids, the data-quality report, time and time zones.
//!
//! Flow: [`ConfigFile::open`] → [`Config::from_file`] → [`load()`] → ([`History`],
//! [`QualityReport`]). Nothing here knows about models, the HTTP service or campaigns.

// Errors carry the file, column and columns present so that messages say what to fix; they are
// built once per failed load, never in a loop, so their size does not matter.
#![allow(clippy::result_large_err)]

mod config;
mod config_file;
mod contract;
mod error;
mod history;
mod ids;
mod live;
mod load;
mod quality;
mod time;
mod zones;
mod zones_table;

/// IANA time zone type used throughout augur.
pub use chrono_tz::Tz;
pub use config::{Config, DataConfig, EpochUnit, TableConfig, TablesConfig};
pub use config_file::{ConfigFile, ConfigSource, DEFAULT_CONFIG};
pub use contract::{
    EmailEventKind, FUTURE_SLACK_SECONDS, Field, FieldType, MAX_QUANTITY, MAX_UNIT_PRICE,
    TableKind, WebEventKind,
};
pub use error::{Error, Result};
pub use history::{AttributeColumn, Contacts, EmailEvents, History, Orders, Products, WebEvents};
pub use ids::{IdIndex, NONE, canonical_id};
pub use live::LiveRow;
pub use load::{
    Erased, Progress, load, load_checked, load_email_kinds, load_with_live, load_with_progress,
};
pub use quality::{DropReason, QualityReport, TableReport};
pub use time::{
    DAY, HOUR, LocalClock, TimeColumn, TimeReader, TimeStatus, format_utc, hour_of_week,
    naive_to_utc, parse_iso,
};
pub use zones::{ZoneSource, country_zone, normalize_country, resolve_zone};
