//! Batch scoring: every contact of a [`Snapshot`] through [`Snapshot::predict`] into Parquet.
//! The HTTP service and campaigns call the same `predict`, so the three never disagree.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Float64Array, Int32Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder,
};
use arrow::datatypes::{Field, Schema};
use rayon::prelude::*;

use crate::affinity::Request;
use crate::error::{Error, Result};
use crate::snapshot::{Models, Prediction, Snapshot};

/// Contacts per row group: memory holds one chunk of predictions at a time.
const CHUNK: usize = 65_536;

/// Predictions for a range of contacts, on all cores.
fn score_range(
    snapshot: &Snapshot,
    models: &Models<'_>,
    request: &Request,
    contacts: std::ops::Range<usize>,
) -> Vec<Prediction> {
    contacts
        .into_par_iter()
        .map(|c| snapshot.predict(models, c, request))
        .collect()
}

/// Scores every contact into a Parquet file, one row group per chunk of contacts. Returns the
/// number of rows written.
pub fn write_all(
    path: &std::path::Path,
    snapshot: &Snapshot,
    models: &Models<'_>,
    request: &Request,
) -> Result<usize> {
    let err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    let n = snapshot.len();
    let mut writer: Option<parquet::arrow::ArrowWriter<std::fs::File>> = None;
    let mut start = 0;
    loop {
        let end = (start + CHUNK).min(n);
        let predictions = score_range(snapshot, models, request, start..end);
        let batch =
            predictions_batch(snapshot, models, start, &predictions).map_err(|e| err(&e))?;
        if writer.is_none() {
            let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
            // Scores are dense floats: dictionary encoding would only cost time.
            let properties = parquet::file::properties::WriterProperties::builder()
                .set_dictionary_enabled(false)
                .build();
            writer = Some(
                parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(properties))
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

/// The output rows of contacts `first..first + predictions.len()`.
fn predictions_batch(
    snapshot: &Snapshot,
    models: &Models<'_>,
    first: usize,
    predictions: &[Prediction],
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let product = |p: u32| models.affinity.product_ids[p as usize].as_str();
    let category = |k: u32| snapshot.products.categories[k as usize].as_str();
    let list_str = || ListBuilder::new(StringBuilder::new());
    let (mut reasons, mut recs, mut cats) = (list_str(), list_str(), list_str());
    let mut rec_scores = ListBuilder::new(Float32Builder::new());
    let mut cat_scores = ListBuilder::new(Float32Builder::new());
    let mut profiles = ListBuilder::new(Float32Builder::new());
    for p in predictions {
        reasons.append_value(p.churn_reasons.iter().map(Some));
        recs.append_value(p.recommendations.iter().map(|(id, _)| Some(product(*id))));
        rec_scores.append_value(p.recommendations.iter().map(|(_, s)| Some(*s as f32)));
        cats.append_value(p.category_affinity.iter().map(|(c, _)| Some(category(*c))));
        cat_scores.append_value(p.category_affinity.iter().map(|(_, s)| Some(*s as f32)));
        profiles.append_value(p.send_time_profile.iter().map(|v| Some(*v as f32)));
    }
    let range = first..first + predictions.len();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "contact_id",
            Arc::new(StringArray::from_iter_values(
                range.clone().map(|c| snapshot.contacts.name(c as u32)),
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
                snapshot.timezone[range].iter().map(|z| z.name()),
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
