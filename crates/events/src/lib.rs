//! # augur-events
//!
//! Events as they happen: `POST /v1/events` checks each posted event against the data
//! contract's rules ([`check`], [`check_batch`]) and appends the valid ones to the
//! [`EventStore`], an append-only SQLite table that `augur flows` reads to start and stop
//! series, and that serving and the next training read beside the exports.

mod config;
mod error;
mod event;
mod store;

pub use config::EventsConfig;
pub use error::{Error, Result};
pub use event::{Body, Event, MAX_ID, check};
pub use store::{Appended, EventStore, Stored};

/// A posted event that was refused: its position in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// Position in the posted array, from 0.
    pub index: usize,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// Checks every event of a posted batch as of `now` (Unix seconds): the valid events, in
/// order, and the refused ones by index. One bad event never stops the others.
pub fn check_batch(
    events: Vec<serde_json::Value>,
    now: i64,
    max_future: i64,
) -> (Vec<Event>, Vec<Rejected>) {
    check_batch_refusing(events, now, max_future, |_| None)
}

/// [`check_batch`], also refusing a valid event when `refuse` gives a reason (e.g. its contact
/// was erased).
pub fn check_batch_refusing(
    events: Vec<serde_json::Value>,
    now: i64,
    max_future: i64,
    refuse: impl Fn(&Event) -> Option<String>,
) -> (Vec<Event>, Vec<Rejected>) {
    let mut valid = Vec::with_capacity(events.len());
    let mut rejected = Vec::new();
    for (index, value) in events.into_iter().enumerate() {
        match check(value, now, max_future).and_then(|e| match refuse(&e) {
            Some(reason) => Err(reason),
            None => Ok(e),
        }) {
            Ok(e) => valid.push(e),
            Err(reason) => rejected.push(Rejected { index, reason }),
        }
    }
    (valid, rejected)
}
