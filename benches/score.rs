//! The scoring path on a trained demo model: a contact lookup as the HTTP service does it (the
//! snapshot's stored answers), a full prediction with the 168-hour profile, batch scoring of
//! every contact into Parquet as `augur score` does it, a filtered recommendation computed at
//! request time, and building the snapshot from the history (what training and
//! `augur score --as-of` pay once).
//!
//! `cargo bench --bench score`; `AUGUR_BENCH_CONTACTS` sets the demo size (default 20,000).

use std::hint::black_box;

use augur_model::Artifact;
use augur_model::default_request;
use augur_model::{Filters, Mode, Request};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

fn trained(contacts: u64) -> (tempfile::TempDir, Artifact, augur_data::History) {
    let (dir, config) = common::demo(contacts);
    let (history, _) = augur_data::load(&config).expect("load");
    let options = augur_train::TrainOptions::default();
    let mut trained =
        augur_train::train(&history, &options, "bench", "2026-11-28T00:00:00Z").expect("train");
    augur_train::write_model(&dir.path().join("models"), &mut trained).expect("write");
    let artifact = Artifact::load(&dir.path().join("models")).expect("load model");
    (dir, artifact, history)
}

fn scoring(c: &mut Criterion) {
    let (_dir, artifact, history) = trained(common::contacts(20_000));
    let models = artifact.models();
    let snapshot = &artifact.snapshot;
    let n = snapshot.len();
    let default = default_request();
    let filtered = Request {
        mode: Mode::Discover,
        k: 10,
        filters: Filters {
            in_stock_only: true,
            exclude: vec![0, 1, 2],
            categories: Vec::new(),
        },
    };
    let mut group = c.benchmark_group("score");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.bench_function("lookup_all_contacts", |b| {
        b.iter(|| {
            for c in 0..n {
                black_box(snapshot.churn(&models, c));
                black_box(snapshot.recommend(&models, c, &default));
                black_box(snapshot.send_time_summary(&models, c));
            }
        });
    });
    group.bench_function("full_prediction_all_contacts", |b| {
        b.iter(|| {
            for c in 0..n {
                black_box(snapshot.predict(&models, c, &default));
            }
        });
    });
    let out = tempfile::tempdir().expect("temp dir");
    group.bench_function("batch_to_parquet_all_contacts", |b| {
        b.iter(|| {
            augur_model::write_scores(&out.path().join("p.parquet"), snapshot, &models, &default)
                .expect("write")
        });
    });
    group.bench_function("discover_in_stock_all_contacts", |b| {
        b.iter(|| {
            for c in 0..n {
                black_box(snapshot.recommend(&models, c, &filtered));
            }
        });
    });
    group.bench_function("build_snapshot", |b| {
        b.iter(|| {
            augur_model::build_snapshot(&history, artifact.manifest.as_of_seconds, &models)
                .expect("build")
        });
    });
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
