//! # augur-core
//!
//! The data contract of augur and everything every later stage shares: configuration
//! (`augur.toml` with environment overrides), reading Parquet exports into a columnar
//! [`History`] with dense integer ids, the data-quality report, and time zones.
//!
//! Flow: [`Config::load`] → [`load::load`] → ([`History`], [`QualityReport`]).

// Errors carry the file, column and columns present so that messages say what to fix; they are
// built once per failed load, never in a loop, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod affinity;
pub mod artifact;
pub mod btyd;
pub mod config;
pub mod contract;
pub mod error;
pub mod features;
pub mod history;
pub mod ids;
pub mod load;
pub mod model;
pub mod quality;
pub mod score;
pub mod send_time;
pub mod send_window;
pub mod snapshot;
pub mod time;
pub mod zones;
mod zones_table;

/// IANA time zone type used throughout augur.
pub use chrono_tz::Tz;
pub use config::{Config, ConfigSource};
pub use contract::{EmailEventKind, TableKind, WebEventKind};
pub use error::{Error, Result};
pub use history::History;
pub use quality::QualityReport;
