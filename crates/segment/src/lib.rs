//! # augur-segment
//!
//! The predictive-segment rule language: who receives a campaign, written as a rule over a
//! contact's scores, facts and attributes, e.g. "churn tier high or critical, in Germany".
//!
//! The same [`Rule`] is written in JSON (HTTP API bodies) and in TOML (`[segments.<name>]` in
//! `augur.toml`), so it is one serde type readable from both. Reading validates the rule and
//! reports problems with their place in the rule (`all[1].any[0]: …`).
//!
//! Flow: read a [`Rule`] (or a [`SegmentSpec`]) → [`Rule::compile`] against the service's
//! [`Schema`] → [`Matcher::matches`] over every contact's [`Record`]. [`catalog`] does the
//! compiling for the built-in lifecycle segments ([`builtin`]) plus the configured ones.
//!
//! The user-facing description of the language is `docs/segments.md`.

// Errors carry the path in the rule, the field and the known field names so that messages say
// what to fix; they are built once per failed compile, never per contact, so their size does not
// matter.
#![allow(clippy::result_large_err)]

mod builtin;
mod catalog;
mod compile;
mod error;
mod rule;
mod schema;

pub use builtin::builtin;
pub use catalog::{Segment, SegmentSpec, catalog};
pub use compile::Matcher;
pub use error::{Error, Result};
pub use rule::{List, MAX_DEPTH, MAX_NODES, Op, Rule, Scalar};
pub use schema::{Kind, Record, Schema, Value};
