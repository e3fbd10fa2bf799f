//! # augur-consent
//!
//! The contacts' own controls, in one place that every stage consults:
//!
//! - [`Keyring`] signs and verifies the `/u/<token>` links every message carries (RFC 8058
//!   one-click unsubscribe, and the preference page), with key rotation and expiry;
//! - [`PreferenceStore`] keeps each contact's choices (topics, at most one a week or a month,
//!   a pause, unsubscribed from everything) with their history, and erased contacts as salted
//!   hashes ([`Forgotten`]);
//! - [`Preference::blocks`] is the rule that planning and sending apply.
//!
//! It knows nothing of HTTP, models or SMTP: `augur serve` renders the page, the campaign and
//! flow planners call the rule.

mod config;
mod error;
mod preference;
mod store;
mod token;

pub use config::{PreferencesConfig, SigningKey, Topic};
pub use error::{Error, Result};
pub use preference::{Block, Frequency, Preference};
pub use store::{Change, Forgotten, PreferenceStore, Recorded};
pub use token::{Keyring, Link, Refused};
