//! # augur-train
//!
//! Fits augur's models on a [`augur_data::History`] as of an instant, backtests each against
//! the baselines a data scientist would reach for first on the last held-out horizon, and
//! writes versioned model directories. Fitting uses linfa; the fitted models are plain numbers
//! in `augur_model::churn`, so scoring never needs this crate.

mod affinity;
mod btyd;
pub mod churn;
mod ease;
mod error;
mod metrics;
mod pipeline;
mod ranker;
mod report;
mod send_time;

pub use btyd::fit as fit_bgnbd;
pub use error::{Error, Result};
pub use metrics::roc_auc;
pub use pipeline::{Backtest, TrainOptions, Trained, train, write_model};
