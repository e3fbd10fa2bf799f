//! Batch scoring: every contact of a [`Snapshot`] into Parquet, column by column. Each value
//! comes from the same [`Snapshot`] methods that [`Snapshot::predict`] (and with it the HTTP
//! service and campaigns) is made of, so the three never disagree; the batch writes them straight
//! into column buffers instead of one allocated prediction per contact.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int32Array, ListArray, RecordBatch, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{Field, Schema};
use rayon::prelude::*;

use crate::affinity::Request;
use crate::error::{Error, Result};
use crate::partial::Partial;
use crate::send_time::HOURS;
use crate::snapshot::{Models, NOT_SCORED_REASON, Snapshot};

mod output;

use output::write_chunks;

/// Contacts per row group. A row group is held in memory while it is encoded (about 1 KB per
/// contact, mostly the 168-float profile); at this size Arrow's per-column buffers are reused by
/// the allocator from chunk to chunk instead of being fresh memory, which the kernel must zero.
const CHUNK: usize = 16_384;
/// Contacts per parallel task within a chunk.
const PART: usize = 2_048;

/// Variable-length values of a run of contacts: how many each has, and all of them in order.
struct Lists<T> {
    lengths: Vec<usize>,
    values: Vec<T>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Self {
            lengths: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<T> Lists<T> {
    fn push(&mut self, values: impl IntoIterator<Item = T>) {
        let before = self.values.len();
        self.values.extend(values);
        self.lengths.push(self.values.len() - before);
    }
}

/// The columns of a run of contacts, filled by one task (the send-time profiles go straight into
/// the chunk's shared buffer).
#[derive(Default)]
struct Part {
    churn_risk: Vec<Option<f64>>,
    churn_tier: Vec<&'static str>,
    churn_reasons: Lists<&'static str>,
    churn_explanations: Lists<String>,
    recommendations: Lists<(u32, f32)>,
    category_affinity: Lists<(u32, f32)>,
    best_send_hour: Vec<i32>,
    send_time_confidence: Vec<f64>,
    send_time_source: Vec<&'static str>,
}

/// What every contact's row is computed from.
struct Scoring<'a> {
    snapshot: &'a Snapshot,
    models: &'a Models<'a>,
    request: &'a Request,
}

impl<'a> Scoring<'a> {
    /// Fills the columns of `contacts` and their profiles (`profiles`: 168 values each).
    fn part(&self, contacts: std::ops::Range<usize>, profiles: &mut [f32]) -> Part {
        let (snapshot, models) = (self.snapshot, self.models);
        let mut part = Part::default();
        for (c, profile) in contacts.zip(profiles.chunks_exact_mut(HOURS)) {
            let risk = snapshot.churn_risk(c);
            part.churn_risk.push(risk);
            part.churn_tier.push(snapshot.churn_tier(c));
            if risk.is_some() {
                let texts = snapshot
                    .churn_reason_codes(c)
                    .map(|j| models.churn.reason_text(j));
                part.churn_reasons.push(texts);
            } else {
                part.churn_reasons.push([NOT_SCORED_REASON]);
            }
            part.churn_explanations
                .push(snapshot.churn_explanations(models, c));
            let recommendations = snapshot.recommend(models, c, self.request);
            part.recommendations
                .push(recommendations.iter().map(|&(p, s)| (p, s as f32)));
            let categories = snapshot.category_affinity(c);
            part.category_affinity
                .push(categories.iter().map(|&(k, s)| (k, s as f32)));
            let summary = snapshot.send_time_summary(models, c);
            part.best_send_hour
                .push(summary.best_hours.first().map_or(0, |h| *h as i32));
            part.send_time_confidence.push(summary.confidence);
            part.send_time_source.push(summary.source);
            models
                .send_time
                .profile_into(snapshot.engagement(c), profile);
        }
        part
    }
}

/// Scores every contact into a Parquet file, one row group per 16,384 contacts. Returns the
/// number of rows written.
pub fn write_scores(
    path: &std::path::Path,
    snapshot: &Snapshot,
    models: &Models<'_>,
    request: &Request,
) -> Result<usize> {
    write_scores_in_row_groups(path, snapshot, models, request, CHUNK)
}

/// [`write_scores`] with `rows_per_group` contacts per row group. The file appears at `path` only
/// when complete: it is written beside it under a temporary name and renamed, so a failed run
/// leaves no truncated file that looks whole (and an earlier output stays as it was).
pub fn write_scores_in_row_groups(
    path: &std::path::Path,
    snapshot: &Snapshot,
    models: &Models<'_>,
    request: &Request,
    rows_per_group: usize,
) -> Result<usize> {
    let err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    let rows_per_group = rows_per_group.max(1);
    let scoring = Scoring {
        snapshot,
        models,
        request,
    };
    let n = snapshot.len();
    // Removed when dropped, unless renamed into place; a killed run's is removed by the next.
    let partial = Partial::beside(path)?;
    let partial_path = &partial.path;
    // Encoding and writing a chunk takes about as long as scoring the next one, so a writer
    // thread takes each chunk while the next is scored; one chunk waits at most. `None` says
    // the last chunk was sent: only then does the writer finish the file.
    let (chunks, to_write) = std::sync::mpsc::sync_channel::<Option<RecordBatch>>(1);
    // The writer hands each chunk's profile buffer back once written: the next chunk fills it
    // instead of fresh memory the kernel would have to zero (the profiles are most of a chunk).
    let (return_buffer, spare_buffers) = std::sync::mpsc::channel::<Vec<f32>>();
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("parquet-writer".into())
            .spawn_scoped(scope, move || {
                // The receiver is dropped when the writer stops, so a blocked send wakes up.
                let to_write = to_write;
                write_chunks(partial_path, path, &to_write, &return_buffer)
            })
            .map_err(|e| Error::io(path, e))?;
        let scored = (|| -> Result<()> {
            let mut start = 0;
            loop {
                let end = (start + rows_per_group).min(n);
                // Every value is overwritten: a reused buffer needs no zeroing.
                let mut profiles = spare_buffers.try_recv().unwrap_or_default();
                profiles.resize((end - start) * HOURS, 0.0);
                let parts: Vec<Part> = profiles
                    .par_chunks_mut(PART * HOURS)
                    .enumerate()
                    .map(|(i, slab)| {
                        let first = start + i * PART;
                        scoring.part(first..first + slab.len() / HOURS, slab)
                    })
                    .collect();
                let batch = chunk_batch(&scoring, start, &parts, profiles).map_err(|e| err(&e))?;
                if chunks.send(Some(batch)).is_err() {
                    return Ok(()); // The writer stopped; its error is returned below.
                }
                start = end;
                if start >= n {
                    break;
                }
            }
            // A writer that already stopped has its own error to report.
            chunks.send(None).ok();
            Ok(())
        })();
        drop(chunks);
        let written = writer
            .join()
            .map_err(|_| err(&"the Parquet writer thread panicked"))?;
        scored.and(written)
    })?;
    partial.commit(path)?;
    Ok(n)
}

/// A list column from per-row lengths and the values in order (items nullable, as Arrow's list
/// builders make them, so the schema is the usual one).
fn list(lengths: impl IntoIterator<Item = usize>, values: ArrayRef) -> ArrayRef {
    let item = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    Arc::new(ListArray::new(
        item,
        OffsetBuffer::from_lengths(lengths),
        values,
        None,
    ))
}

/// The output rows of contacts `first..`, from the chunk's parts in order.
fn chunk_batch(
    scoring: &Scoring<'_>,
    first: usize,
    parts: &[Part],
    profiles: Vec<f32>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let (snapshot, models) = (scoring.snapshot, scoring.models);
    let rows = profiles.len() / HOURS;
    let range = first..first + rows;
    let (recommendations, recommendation_scores) = scored_lists(
        concat(parts, |p| &p.recommendations.lengths),
        concat(parts, |p| &p.recommendations.values),
        |p| models.affinity.product_ids[p as usize].as_str(),
    );
    let (categories, category_scores) = scored_lists(
        concat(parts, |p| &p.category_affinity.lengths),
        concat(parts, |p| &p.category_affinity.values),
        |k| snapshot.products.categories[k as usize].as_str(),
    );
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "contact_id",
            Arc::new(StringArray::from_iter_values(
                range.clone().map(|c| snapshot.contacts.name(c as u32)),
            )),
        ),
        (
            "churn_risk",
            Arc::new(Float64Array::from_iter(concat(parts, |p| &p.churn_risk))),
        ),
        (
            "churn_tier",
            Arc::new(StringArray::from_iter_values(concat(parts, |p| {
                &p.churn_tier
            }))),
        ),
        (
            "churn_reasons",
            list(
                concat(parts, |p| &p.churn_reasons.lengths),
                Arc::new(StringArray::from_iter_values(concat(parts, |p| {
                    &p.churn_reasons.values
                }))),
            ),
        ),
        (
            "churn_explanations",
            list(
                concat(parts, |p| &p.churn_explanations.lengths),
                Arc::new(StringArray::from_iter_values(
                    parts
                        .iter()
                        .flat_map(|p| p.churn_explanations.values.iter()),
                )),
            ),
        ),
        ("recommendations", recommendations),
        ("recommendation_scores", recommendation_scores),
        ("category_affinity", categories),
        ("category_affinity_scores", category_scores),
        (
            output::PROFILE,
            list(
                std::iter::repeat_n(HOURS, rows),
                Arc::new(Float32Array::from(profiles)),
            ),
        ),
        (
            "best_send_hour_of_week",
            Arc::new(Int32Array::from_iter_values(concat(parts, |p| {
                &p.best_send_hour
            }))),
        ),
        (
            "send_time_confidence",
            Arc::new(Float64Array::from_iter_values(concat(parts, |p| {
                &p.send_time_confidence
            }))),
        ),
        (
            "send_time_source",
            Arc::new(StringArray::from_iter_values(concat(parts, |p| {
                &p.send_time_source
            }))),
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

/// Two list columns from per-row lengths and (index, score) pairs in order: the names of the
/// indexes, and the scores.
fn scored_lists<'n>(
    lengths: impl Iterator<Item = usize> + Clone,
    items: impl Iterator<Item = (u32, f32)> + Clone,
    name: impl Fn(u32) -> &'n str,
) -> (ArrayRef, ArrayRef) {
    let names = StringArray::from_iter_values(items.clone().map(|(i, _)| name(i)));
    let scores = Float32Array::from_iter_values(items.map(|(_, s)| s));
    (
        list(lengths.clone(), Arc::new(names)),
        list(lengths, Arc::new(scores)),
    )
}

/// One column of every part, in order.
fn concat<'p, T: Copy + 'p>(
    parts: &'p [Part],
    column: impl Fn(&'p Part) -> &'p [T] + Clone + 'p,
) -> impl Iterator<Item = T> + Clone + 'p {
    parts.iter().flat_map(move |p| column(p).iter().copied())
}
