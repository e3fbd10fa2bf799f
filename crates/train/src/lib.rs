//! # augur-train
//!
//! Fits augur's models on a [`augur_data::History`] as of an instant, backtests each against
//! the baselines a data scientist would reach for first on the last held-out horizon, and
//! writes versioned model directories. Fitting uses linfa; the fitted models are plain numbers
//! that `augur-model` applies, so scoring never needs this crate.
//!
//! Flow: [`train`] (one step per model in `pipeline/`) → [`Trained`] (models, manifest,
//! [`Backtest`]) → [`write_model`] (the model directory and `report.html`). The [`churn`]
//! module is public for benchmarks and research notebooks that fit the churn regression alone.

mod affinity;
mod backtest;
mod btyd;
pub mod churn;
mod ease;
mod error;
mod metrics;
mod options;
mod pipeline;
mod ranker;
mod report;
mod send_time;

pub use backtest::{Backtest, ChurnCurves, Trained};
pub use btyd::fit as fit_bgnbd;
pub use error::{Error, Result};
pub use metrics::roc_auc;
pub use options::{DEFAULT_HORIZON_DAYS, TrainOptions};
pub use pipeline::{train, write_model};
