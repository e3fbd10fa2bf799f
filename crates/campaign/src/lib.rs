//! # augur-campaign
//!
//! Nightly predictive campaigns: select an audience with the current model, personalize each
//! message, send each contact at its own best time, and deliver over SMTP exactly once.
//!
//! Flow: [`spec::Campaign::load`] → [`plan::plan`] (audience, suppression, holdout, variants,
//! send times, rendering) → [`outbox::Outbox`] (SQLite) → [`deliver::send`] (SMTP or `.eml`
//! files; `sent` rows appended to the e-mail events by [`events::SentLog`]) →
//! [`report::report`].

// Errors carry the file, template or setting at fault; they are built once per failure.
#![allow(clippy::result_large_err)]

pub mod deliver;
pub mod directory;
pub mod error;
pub mod events;
pub mod message;
pub mod outbox;
pub mod plan;
pub mod relay;
pub mod render;
pub mod report;
pub mod schedule;
pub mod spec;

pub use error::{Error, Result};

/// The example campaigns and their templates (`crates/campaign/campaigns/`), as relative path and
/// text, so the demo can write them next to its data.
pub const EXAMPLES: [(&str, &str); 6] = [
    ("winback.toml", include_str!("../campaigns/winback.toml")),
    (
        "cross_sell.toml",
        include_str!("../campaigns/cross_sell.toml"),
    ),
    ("vip.toml", include_str!("../campaigns/vip.toml")),
    ("welcome.toml", include_str!("../campaigns/welcome.toml")),
    (
        "templates/products.html",
        include_str!("../campaigns/templates/products.html"),
    ),
    (
        "templates/products.txt",
        include_str!("../campaigns/templates/products.txt"),
    ),
];
