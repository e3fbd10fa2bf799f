//! The one scoring path: an [`Artifact`] and a history as of an instant → one prediction per
//! contact. Batch scoring, the HTTP service and campaigns all go through here.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Float64Array, Int32Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder,
};
use arrow::datatypes::{Field, Schema};
use rayon::prelude::*;

use crate::affinity::{Catalog, Filters, Mode, Request, category_affinity, profiles};
use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::features::{ContactState, churn_features, contact_states};
use crate::history::History;
use crate::ids::NONE;
use crate::model::tier;
use crate::send_time::engagement_counts;

/// One contact's predictions.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Probability of no purchase within the horizon; `None` for contacts that never bought.
    pub churn_risk: Option<f64>,
    /// Tier of the risk, or `not_scored`.
    pub churn_tier: &'static str,
    /// Why the risk is what it is (or why it is not scored).
    pub churn_reasons: Vec<String>,
    /// Recommended products (external ids), best first, with scores.
    pub recommendations: Vec<(String, f64)>,
    /// Category name → share of the contact's product interest, highest first.
    pub category_affinity: Vec<(String, f64)>,
    /// Engagement profile over the 168 local hours of the week (Monday 00:00 first), sums to 1.
    pub send_time_profile: Vec<f64>,
    /// Best local hours of the week to send, best first.
    pub best_send_hours: Vec<usize>,
    /// Confidence of the profile.
    pub send_time_confidence: f64,
    /// Which send-time prior dominated.
    pub send_time_source: &'static str,
}

/// Scoring options.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Instant to score as of (UTC seconds).
    pub as_of: i64,
    /// Recommendation mode.
    pub mode: Mode,
    /// Recommendations per contact.
    pub k: usize,
    /// Recommendation filters (dense product ids of the history).
    pub filters: Filters,
}

/// Everything scoring needs that is shared by all contacts, computed once per as-of time.
pub struct Scorer<'a> {
    artifact: &'a Artifact,
    history: &'a History,
    as_of: i64,
    states: Vec<ContactState>,
    profiles: Vec<crate::affinity::Profile>,
    counts: Vec<[f32; crate::send_time::HOURS]>,
    to_model: Vec<u32>,
    in_stock: Vec<bool>,
    category: Vec<u32>,
    request: Request,
}

impl<'a> Scorer<'a> {
    /// Prepares scoring of `history` as of `options.as_of`.
    pub fn new(artifact: &'a Artifact, history: &'a History, options: &ScoreOptions) -> Self {
        let t = options.as_of;
        let affinity = &artifact.affinity;
        // Products by model index: the history's dense ids may differ from training's.
        let model_index: std::collections::HashMap<&str, u32> = affinity
            .product_ids
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i as u32))
            .collect();
        let to_model: Vec<u32> = history
            .products
            .ids
            .names()
            .map(|p| model_index.get(p).copied().unwrap_or(NONE))
            .collect();
        let mut in_stock = vec![true; affinity.product_ids.len()];
        let mut category = vec![NONE; affinity.product_ids.len()];
        for (p, &m) in to_model.iter().enumerate() {
            if m != NONE {
                in_stock[m as usize] = history.products.in_stock[p];
                category[m as usize] = history.products.category[p];
            }
        }
        let request = Request {
            mode: options.mode,
            k: options.k,
            filters: Filters {
                in_stock_only: options.filters.in_stock_only,
                exclude: options
                    .filters
                    .exclude
                    .iter()
                    .filter_map(|p| to_model.get(*p as usize).copied())
                    .filter(|m| *m != NONE)
                    .collect(),
                categories: options.filters.categories.clone(),
            },
        };
        Self {
            artifact,
            history,
            as_of: t,
            states: contact_states(history, t),
            profiles: profiles(history, t, &affinity.signals),
            counts: engagement_counts(history, t, &artifact.send_time.weights),
            to_model,
            in_stock,
            category,
            request,
        }
    }

    /// Predictions for one contact.
    pub fn score(&self, c: usize) -> Prediction {
        let (artifact, history, t) = (self.artifact, self.history, self.as_of);
        let affinity = &artifact.affinity;
        let (churn_risk, churn_tier, churn_reasons) = match churn_features(
            &self.states[c],
            t,
            artifact.churn.btyd.as_ref(),
            artifact.churn.horizon_days,
        ) {
            Some(row) => {
                let p = artifact.churn.probability(&row);
                (Some(p), tier(p), artifact.churn.reasons(&row, 3))
            }
            None => (
                None,
                "not_scored",
                vec!["no purchase before the as-of time".to_string()],
            ),
        };
        let profile: Vec<(u32, f64, f64)> = self.profiles[c]
            .iter()
            .filter_map(|&(p, b, w)| Some((*self.to_model.get(p as usize)?, b, w)))
            .filter(|(p, _, _)| *p != NONE)
            .collect();
        let catalog = Catalog {
            in_stock: &self.in_stock,
            category: &self.category,
        };
        let recommendations = affinity
            .recommend(
                &profile,
                history.contacts.country[c],
                &self.request,
                &catalog,
            )
            .into_iter()
            .map(|(p, s)| (affinity.product_ids[p as usize].clone(), s))
            .collect();
        let category_affinity = category_affinity(&profile, &self.category)
            .into_iter()
            .map(|(k, s)| (history.products.categories.name(k).to_string(), s))
            .collect();
        let st = artifact.send_time.predict(&self.counts[c]);
        Prediction {
            churn_risk,
            churn_tier,
            churn_reasons,
            recommendations,
            category_affinity,
            send_time_profile: st.profile,
            best_send_hours: st.best_hours,
            send_time_confidence: st.confidence,
            send_time_source: st.source.name(),
        }
    }

    /// Predictions for a range of contacts, on all cores.
    pub fn score_range(&self, contacts: std::ops::Range<usize>) -> Vec<Prediction> {
        contacts.into_par_iter().map(|c| self.score(c)).collect()
    }
}

/// Scores every contact of `history` (see [`Scorer`] to score in bounded chunks).
pub fn score_all(
    artifact: &Artifact,
    history: &History,
    options: &ScoreOptions,
) -> Vec<Prediction> {
    Scorer::new(artifact, history, options).score_range(0..history.contacts.len())
}

/// Scores every contact into a Parquet file, one row group per chunk of contacts, so memory
/// holds one chunk of predictions at a time. Returns the number of rows written.
pub fn write_all(
    path: &std::path::Path,
    artifact: &Artifact,
    history: &History,
    options: &ScoreOptions,
) -> Result<usize> {
    const CHUNK: usize = 65_536;
    let scorer = Scorer::new(artifact, history, options);
    let mut writer: Option<parquet::arrow::ArrowWriter<std::fs::File>> = None;
    let err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    let n = history.contacts.len();
    let mut start = 0;
    loop {
        let end = (start + CHUNK).min(n);
        let batch = predictions_batch(history, start, &scorer.score_range(start..end))
            .map_err(|e| err(&e))?;
        if writer.is_none() {
            let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
            writer = Some(
                parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
                    .map_err(|e| err(&e))?,
            );
        }
        if let Some(w) = writer.as_mut() {
            w.write(&batch).map_err(|e| err(&e))?;
            w.flush().map_err(|e| err(&e))?;
        }
        start = end;
        if start >= n {
            break;
        }
    }
    if let Some(w) = writer {
        w.close().map_err(|e| err(&e))?;
    }
    Ok(n)
}

/// Writes predictions (for contacts `0..predictions.len()`) as Parquet.
pub fn write_predictions(
    path: &std::path::Path,
    history: &History,
    predictions: &[Prediction],
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    let batch = predictions_batch(history, 0, predictions).map_err(|e| err(&e))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| err(&e))?;
    writer.write(&batch).map_err(|e| err(&e))?;
    writer.close().map_err(|e| err(&e))?;
    Ok(())
}

/// The output rows of contacts `first..first + predictions.len()`.
fn predictions_batch(
    history: &History,
    first: usize,
    predictions: &[Prediction],
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let list_str = || ListBuilder::new(StringBuilder::new());
    let (mut reasons, mut recs, mut cats) = (list_str(), list_str(), list_str());
    let mut rec_scores = ListBuilder::new(Float32Builder::new());
    let mut cat_scores = ListBuilder::new(Float32Builder::new());
    let mut profiles = ListBuilder::new(Float32Builder::new());
    for p in predictions {
        reasons.append_value(p.churn_reasons.iter().map(Some));
        recs.append_value(p.recommendations.iter().map(|(id, _)| Some(id.as_str())));
        rec_scores.append_value(p.recommendations.iter().map(|(_, s)| Some(*s as f32)));
        cats.append_value(p.category_affinity.iter().map(|(c, _)| Some(c.as_str())));
        cat_scores.append_value(p.category_affinity.iter().map(|(_, s)| Some(*s as f32)));
        profiles.append_value(p.send_time_profile.iter().map(|v| Some(*v as f32)));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "contact_id",
            Arc::new(StringArray::from_iter_values(
                (first..first + predictions.len()).map(|c| history.contacts.ids.name(c as u32)),
            )),
        ),
        (
            "churn_risk",
            Arc::new(Float64Array::from(
                predictions.iter().map(|p| p.churn_risk).collect::<Vec<_>>(),
            )),
        ),
        (
            "churn_tier",
            Arc::new(StringArray::from_iter_values(
                predictions.iter().map(|p| p.churn_tier),
            )),
        ),
        ("churn_reasons", Arc::new(reasons.finish())),
        ("recommendations", Arc::new(recs.finish())),
        ("recommendation_scores", Arc::new(rec_scores.finish())),
        ("category_affinity", Arc::new(cats.finish())),
        ("category_affinity_scores", Arc::new(cat_scores.finish())),
        ("send_time_profile", Arc::new(profiles.finish())),
        (
            "best_send_hour_of_week",
            Arc::new(Int32Array::from_iter_values(
                predictions
                    .iter()
                    .map(|p| p.best_send_hours.first().copied().unwrap_or(0) as i32),
            )),
        ),
        (
            "send_time_confidence",
            Arc::new(Float64Array::from_iter_values(
                predictions.iter().map(|p| p.send_time_confidence),
            )),
        ),
        (
            "send_time_source",
            Arc::new(StringArray::from_iter_values(
                predictions.iter().map(|p| p.send_time_source),
            )),
        ),
        (
            "timezone",
            Arc::new(StringArray::from_iter_values(
                history.contacts.timezone[first..first + predictions.len()]
                    .iter()
                    .map(|z| z.name()),
            )),
        ),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), *n == "churn_risk"))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect())
}
