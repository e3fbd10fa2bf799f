//! # augur-train
//!
//! Fits augur's models on a [`augur_core::History`] as of an instant, backtests each against
//! the baselines a data scientist would reach for first on the last held-out horizon, and
//! writes versioned model directories. Fitting uses linfa; the fitted models are plain numbers
//! in `augur_core::model`, so scoring never needs this crate.

pub mod affinity;
pub mod churn;
pub mod ease;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod ranker;
pub mod report;
pub mod send_time;

pub use error::{Error, Result};
