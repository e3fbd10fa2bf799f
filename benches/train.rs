//! Training on a demo history: the whole of `augur train` after loading (every model fitted and
//! backtested, the contact snapshot built), and the two steps whose cost grows with the number of
//! buyers rather than the number of events: the churn logistic fit on the stacked cutoffs and
//! the BG/NBD fit behind two of its features.
//!
//! `cargo bench --bench train`; `AUGUR_BENCH_CONTACTS` sets the demo size (default 10,000).

use std::hint::black_box;

use augur_data::DAY;
use augur_model::{CHURN_FEATURES, buyers_rfa, contact_states};
use augur_train::churn;
use augur_train::{TrainOptions, train};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

fn history(contacts: u64) -> augur_data::History {
    let (_dir, config) = common::demo(contacts);
    augur_data::load(&config).expect("load").0
}

fn training(c: &mut Criterion) {
    let history = history(common::contacts(10_000));
    let (first, last) = history.event_span().expect("demo events");
    let as_of = last + 1;
    let plan =
        churn::plan(first, as_of, 90 * DAY).expect("AUGUR_BENCH_CONTACTS too small: no churn plan");
    let (examples, newest, btyd) = churn::stacked_examples(&history, &plan.cutoffs, plan.horizon);
    let all: Vec<usize> = (0..CHURN_FEATURES.len()).collect();
    let horizon_days = plan.horizon as f64 / DAY as f64;
    let buyers = buyers_rfa(&contact_states(&history, as_of), as_of);

    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    group.throughput(Throughput::Elements(history.contacts.len() as u64));
    group.bench_function("all_models_and_backtests", |b| {
        b.iter(|| {
            black_box(
                train(
                    &history,
                    &TrainOptions::default(),
                    "bench",
                    "2026-11-28T00:00:00Z",
                )
                .expect("train"),
            )
        });
    });
    group.throughput(Throughput::Elements(examples.len() as u64));
    group.bench_function("churn_logistic_fit", |b| {
        b.iter(|| {
            black_box(
                churn::fit(&examples, &newest, &all, 1.0, horizon_days, btyd)
                    .expect("AUGUR_BENCH_CONTACTS too small: too few labelled buyers"),
            )
        });
    });
    group.throughput(Throughput::Elements(buyers.len() as u64));
    group.bench_function("bgnbd_fit", |b| {
        b.iter(|| black_box(augur_train::fit_bgnbd(&buyers).expect("enough buyers")));
    });
    group.finish();
}

criterion_group!(benches, training);
criterion_main!(benches);
