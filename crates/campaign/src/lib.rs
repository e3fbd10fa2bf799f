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
pub mod render;
pub mod report;
pub mod schedule;
pub mod spec;

pub use error::{Error, Result};
