//! `augur train` and `augur score` end to end on real Parquet: backtests beat the baselines,
//! predictions are complete and finite, nothing after the as-of time matters, and thin or
//! broken inputs give named fallbacks or clear errors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{Float32Type, Float64Type, Int32Type};

use crate::util::{Dir, col, read_parquet, run, stderr, write_parquet};

fn demo(dir: &Dir, contacts: u32) {
    let out = run(dir.augur().args([
        "demo-data",
        "--contacts",
        &contacts.to_string(),
        "--seed",
        "5",
        "--out",
        "demo",
    ]));
    assert_eq!(out.status.code(), Some(0));
}

/// Every row of a batch-scoring file equals [`Snapshot::predict`] of its contact with the
/// default request: the batch writes the same answers column by column, in contact order.
fn assert_rows_match_predict(path: &std::path::Path, artifact: &augur_model::Artifact) {
    let models = artifact.models();
    let snapshot = &artifact.snapshot;
    let request = augur_model::default_request();
    let mut c = 0;
    for batch in read_parquet(path) {
        let ids = col(&batch, "contact_id").as_string::<i32>();
        let risk = col(&batch, "churn_risk").as_primitive::<Float64Type>();
        let reasons = col(&batch, "churn_reasons").as_list::<i32>();
        let recs = col(&batch, "recommendations").as_list::<i32>();
        let cats = col(&batch, "category_affinity_scores").as_list::<i32>();
        let profile = col(&batch, "send_time_profile").as_list::<i32>();
        let best = col(&batch, "best_send_hour_of_week").as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            let expected = snapshot.predict(&models, c, &request);
            assert_eq!(ids.value(i), snapshot.contacts.name(c as u32), "row {c}");
            assert_eq!(
                (!risk.is_null(i)).then(|| risk.value(i)),
                expected.churn_risk
            );
            let strings = |list: ArrayRef| -> Vec<String> {
                list.as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(String::from)
                    .collect()
            };
            assert_eq!(strings(reasons.value(i)), expected.churn_reasons, "row {c}");
            let products = strings(recs.value(i));
            let expected_products: Vec<String> = expected
                .recommendations
                .iter()
                .map(|(p, _)| models.affinity.product_ids[*p as usize].clone())
                .collect();
            assert_eq!(products, expected_products, "row {c}");
            let shares = cats.value(i);
            let shares = shares.as_primitive::<Float32Type>();
            // Whole lists are compared: a zip would pass when one list is shorter.
            let want: Vec<f32> = expected
                .category_affinity
                .iter()
                .map(|(_, share)| *share as f32)
                .collect();
            assert_eq!(shares.values().to_vec(), want, "row {c}");
            let p = profile.value(i);
            let p = p.as_primitive::<Float32Type>();
            let want: Vec<f32> = expected
                .send_time_profile
                .iter()
                .map(|v| *v as f32)
                .collect();
            assert_eq!(p.values().to_vec(), want, "row {c}");
            assert_eq!(
                Some(best.value(i) as usize),
                expected.best_send_hours.first().copied()
            );
            c += 1;
        }
    }
    assert_eq!(c, snapshot.len());
}

/// `augur score` of the demo with the model in `models`, into `p.parquet`.
fn score(dir: &Dir) {
    score_into(dir, "p.parquet");
}

/// `augur score` of the demo with the model in `models`, into `out`.
fn score_into(dir: &Dir, out: &str) {
    let run = run(dir.augur().args([
        "score",
        "--config",
        "demo/augur.toml",
        "--models",
        "models",
        "--out",
        out,
    ]));
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
}

fn metrics(dir: &Dir, models: &str) -> serde_json::Value {
    let version = std::fs::read_to_string(dir.join(models).join("current")).expect("current");
    let text = std::fs::read_to_string(dir.join(models).join(version.trim()).join("manifest.json"))
        .expect("manifest");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn train_beats_baselines_and_score_writes_every_contact() {
    let dir = Dir::new();
    demo(&dir, 3000);
    let out = run(dir
        .augur()
        .args(["train", "--config", "demo/augur.toml", "--models", "models"]));
    assert_eq!(out.status.code(), Some(0));
    let manifest = metrics(&dir, "models");
    // The L2 strength served is one of those the backtest tried.
    let churn = &manifest["hyperparameters"]["churn"];
    let tried = churn["alphas_tried"].as_array().expect("strengths tried");
    assert!(
        tried.len() > 1 && tried.contains(&churn["alpha"]),
        "{churn}"
    );
    let m = &manifest["metrics"];
    let auc = |name: &str| m["churn"][name]["roc_auc"].as_f64().expect("auc");
    assert!(
        auc("augur") > auc("recency") && auc("augur") > auc("rfm_logistic"),
        "{}",
        m["churn"]
    );
    let recall = |set: &str, name: &str| {
        m["recommendations"][set][name]["recall_at_10"]
            .as_f64()
            .expect("recall")
    };
    assert!(recall("all_items", "augur") > 2.0 * recall("all_items", "popularity"));
    assert!(recall("all_items", "augur") >= recall("all_items", "own_most_bought"));
    assert!(recall("new_items", "augur") > recall("new_items", "popularity"));
    let ll = |name: &str| m["send_time"][name]["log_likelihood"].as_f64().expect("ll");
    assert!(ll("augur") > ll("global_profile"));
    let week = |name: &str| {
        m["send_time"][name]["hour_of_week_log_likelihood"]
            .as_f64()
            .expect("hour-of-week ll")
    };
    assert!(week("augur") > week("global_profile"), "{}", m["send_time"]);
    let kappa_day = manifest["hyperparameters"]["send_time"]["kappa_day"].as_f64();
    assert!(kappa_day.is_some_and(|k| k >= 0.0), "{manifest}");
    let version = manifest["version"].as_str().expect("version");
    let report = std::fs::read_to_string(dir.join("models").join(version).join("report.html"))
        .expect("report");
    assert!(
        report.matches("<svg").count() >= 6
            && report.contains("ROC")
            && report.contains("Send-time profile")
    );
    assert!(!report.contains("chart not drawn"), "a chart failed");
    // Every chart and every metric table says how to read it.
    assert_eq!(
        report.matches("<figcaption>").count(),
        report.matches("<svg").count()
    );
    assert!(report.matches("class=\"note\"").count() >= 4);
    assert!(report.contains("lower is better") && report.contains("higher is better"));
    assert!(report.contains("share of the week") && report.contains("hour of day (local)"));

    score(&dir);
    // 3,000 contacts: several parallel parts of one row group.
    let artifact = augur_model::Artifact::load(&dir.join("models")).expect("load");
    assert_rows_match_predict(&dir.join("p.parquet"), &artifact);
    let mut rows = 0;
    for batch in read_parquet(&dir.join("p.parquet")) {
        let risk = col(&batch, "churn_risk").as_primitive::<Float64Type>();
        let tier = col(&batch, "churn_tier").as_string::<i32>();
        let profile = col(&batch, "send_time_profile").as_list::<i32>();
        let recs = col(&batch, "recommendations").as_list::<i32>();
        let best = col(&batch, "best_send_hour_of_week").as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            if risk.is_null(i) {
                assert_eq!(tier.value(i), "not_scored");
            } else {
                assert!(risk.value(i) > 0.0 && risk.value(i) < 1.0);
            }
            let p = profile.value(i);
            let p = p.as_primitive::<Float32Type>();
            assert_eq!(p.len(), 168);
            let sum: f32 = p.values().iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-3 && p.values().iter().all(|v| v.is_finite() && *v >= 0.0)
            );
            assert!((0..168).contains(&best.value(i)));
            let r = recs.value(i);
            let r = r.as_string::<i32>();
            let distinct: std::collections::HashSet<&str> = r.iter().flatten().collect();
            assert!(r.len() <= 10 && distinct.len() == r.len());
        }
        rows += batch.num_rows();
    }
    assert_eq!(rows, 3000);
}

#[test]
fn planted_truth_is_recovered() {
    let dir = Dir::new();
    demo(&dir, 4000);
    let out = run(dir
        .augur()
        .args(["train", "--config", "demo/augur.toml", "--models", "models"]));
    assert_eq!(out.status.code(), Some(0));
    score(&dir);
    let mut truth: HashMap<String, (bool, i32, i32)> = HashMap::new();
    for b in read_parquet(&dir.join("demo/truth.parquet")) {
        let id = col(&b, "contact_id").as_string::<i32>();
        let alive = col(&b, "alive_at_end").as_boolean();
        let peak = col(&b, "peak_hour_of_day").as_primitive::<Int32Type>();
        let peak_week = col(&b, "peak_hour_of_week").as_primitive::<Int32Type>();
        for i in 0..b.num_rows() {
            truth.insert(
                id.value(i).to_string(),
                (alive.value(i), peak.value(i), peak_week.value(i) % 24),
            );
        }
    }
    // Human engagements per contact (opens that are not machine opens, and clicks).
    let config = augur_data::Config::load(Some(&dir.join("demo/augur.toml")))
        .expect("config")
        .0;
    let (history, _) = augur_data::load(&config).expect("load");
    let weights = augur_model::EngagementWeights {
        click: 1.0,
        open: 1.0,
        web: 0.0,
        order: 0.0,
        half_life_days: 1e9,
    };
    let end = history.email_events.at.last().copied().unwrap_or(0) + 1;
    let counts = augur_model::engagement_counts(&history, end, &weights);
    let engaged = |id: &str| {
        history
            .contacts
            .ids
            .get(id)
            .map_or(0.0, |c| counts[c as usize].iter().sum::<f32>())
    };
    let (mut risks, mut dropped) = (Vec::new(), Vec::new());
    let (mut checked, mut near) = (0, 0);
    for b in read_parquet(&dir.join("p.parquet")) {
        let id = col(&b, "contact_id").as_string::<i32>();
        let risk = col(&b, "churn_risk").as_primitive::<Float64Type>();
        let best = col(&b, "best_send_hour_of_week").as_primitive::<Int32Type>();
        for i in 0..b.num_rows() {
            let (alive, peak, peak_week) = truth[id.value(i)];
            if !risk.is_null(i) {
                risks.push(risk.value(i));
                dropped.push(!alive);
            }
            if engaged(id.value(i)) >= 10.0 {
                checked += 1;
                let h = best.value(i) % 24;
                let close = |p: i32| {
                    let d = (h - p).rem_euclid(24);
                    d.min(24 - d) <= 1
                };
                near += i32::from(close(peak) || close(peak_week));
            }
        }
    }
    let auc = augur_train::roc_auc(&risks, &dropped);
    eprintln!(
        "churn AUC against planted dropout: {auc:.3}; send hour within 1 h of the planted peak: {near}/{checked}"
    );
    assert!(auc > 0.8, "churn AUC against planted dropout {auc:.3}");
    assert!(
        checked > 200 && f64::from(near) / f64::from(checked) > 0.5,
        "{near}/{checked}"
    );
}

#[test]
fn events_after_as_of_change_nothing() {
    let dir = Dir::new();
    demo(&dir, 1500);
    let as_of = "2026-09-01";
    let config = "[tables.contacts]\npath = \"demo/contacts.parquet\"\n[tables.products]\npath = \"demo/products.parquet\"\n\
        [tables.orders]\npath = \"orders\"\n[tables.email_events]\npath = \"email\"\n[tables.web_events]\npath = \"demo/web_events.parquet\"\n";
    dir.write("augur.toml", config);
    std::fs::create_dir_all(dir.join("orders")).expect("mkdir");
    std::fs::create_dir_all(dir.join("email")).expect("mkdir");
    std::fs::copy(
        dir.join("demo/orders.parquet"),
        dir.join("orders/a.parquet"),
    )
    .expect("copy");
    std::fs::copy(
        dir.join("demo/email_events/part-0.parquet"),
        dir.join("email/a.parquet"),
    )
    .expect("copy");
    let train = |models: &str| {
        let out = run(dir
            .augur()
            .args(["train", "--as-of", as_of, "--models", models]));
        assert_eq!(out.status.code(), Some(0));
        let out = run(dir.augur().args([
            "score",
            "--models",
            models,
            "--out",
            &format!("{models}.parquet"),
        ]));
        assert_eq!(out.status.code(), Some(0));
    };
    train("before");
    // Plant a burst of purchases and clicks after the as-of time.
    let n = 500;
    let ids: Vec<String> = (1..=n).map(|i| format!("C{i:07}")).collect();
    let at: Vec<&str> = vec!["2026-09-15T12:00:00Z"; n];
    write_parquet(
        &dir.join("orders/b.parquet"),
        vec![
            (
                "order_id",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("late-{i}")),
                )),
            ),
            (
                "contact_id",
                Arc::new(StringArray::from_iter_values(ids.iter())),
            ),
            ("product_id", Arc::new(StringArray::from(vec!["P00001"; n]))),
            ("ordered_at", Arc::new(StringArray::from(at.clone()))),
        ],
    );
    write_parquet(
        &dir.join("email/b.parquet"),
        vec![
            (
                "contact_id",
                Arc::new(StringArray::from_iter_values(ids.iter())),
            ),
            ("event", Arc::new(StringArray::from(vec!["click"; n]))),
            ("occurred_at", Arc::new(StringArray::from(at))),
        ],
    );
    train("after");
    let version = |m: &str| {
        std::fs::read_to_string(dir.join(m).join("current"))
            .expect("current")
            .trim()
            .to_string()
    };
    for file in [
        "churn.json",
        "affinity.json",
        "send_time.json",
        "metrics.json",
    ] {
        let a = std::fs::read(dir.join("before").join(version("before")).join(file)).expect("a");
        let b = std::fs::read(dir.join("after").join(version("after")).join(file)).expect("b");
        assert!(
            a == b,
            "{file} changed after planting events past the as-of time"
        );
    }
    let a = read_parquet(&dir.join("before.parquet"));
    let b = read_parquet(&dir.join("after.parquet"));
    assert_eq!(
        a, b,
        "predictions changed after planting events past the as-of time"
    );
}

#[test]
fn thin_history_trains_with_named_fallbacks() {
    let dir = Dir::new();
    write_parquet(
        &dir.join("orders.parquet"),
        vec![
            (
                "contact_id",
                Arc::new(StringArray::from(vec!["only", "only"])),
            ),
            ("product_id", Arc::new(StringArray::from(vec!["p", "p"]))),
            (
                "ordered_at",
                Arc::new(StringArray::from(vec![
                    "2024-01-01T10:00:00Z",
                    "2024-01-01T10:00:00Z",
                ])),
            ),
        ],
    );
    dir.write("augur.toml", "[tables.orders]\npath = \"orders.parquet\"\n");
    let out = run(dir.augur().args(["train"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The repeated line is skipped, and training says so.
    let said = stderr(&out);
    assert!(
        said.contains("rows skipped") && said.contains("duplicate row 1"),
        "{said}"
    );
    let manifest = metrics(&dir, "models");
    let fallbacks = manifest["fallbacks"].as_array().expect("fallbacks");
    assert!(
        fallbacks
            .iter()
            .any(|f| f.as_str().unwrap_or("").starts_with("churn:")),
        "{fallbacks:?}"
    );
    let out = run(dir.augur().args(["score", "--out", "p.parquet"]));
    assert_eq!(out.status.code(), Some(0));
    let batches = read_parquet(&dir.join("p.parquet"));
    let risk = batches[0]
        .column_by_name("churn_risk")
        .expect("risk")
        .as_primitive::<Float64Type>();
    assert!(risk.is_null(0) || risk.value(0).is_finite());

    // A model whose features differ from this build's is refused, not silently misread.
    let version = manifest["version"].as_str().expect("version");
    let churn = dir.join("models").join(version).join("churn.json");
    let text = std::fs::read_to_string(&churn)
        .expect("churn.json")
        .replacen("recency_days", "recency_weeks", 1);
    std::fs::write(&churn, text).expect("write");
    let out = run(dir.augur().args(["score", "--out", "p.parquet"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("retrain"), "{}", stderr(&out));
}

#[test]
fn missing_or_newer_models_are_clear_errors() {
    let dir = Dir::new();
    let out = run(dir.augur().args(["score", "--models", "nowhere"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("run `augur train` first"),
        "{}",
        stderr(&out)
    );
    dir.write("models/v9/manifest.json", "{\"format_version\": 99}");
    dir.write("models/current", "v9");
    let out = run(dir.augur().args(["score", "--models", "models"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("newer augur"), "{}", stderr(&out));
    // `current` itself names the version: it is followed, not taken for an empty directory.
    let out = run(dir.augur().args(["score", "--models", "models/current"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("newer augur"), "{}", stderr(&out));
    assert!(stderr(&out).contains("models/v9"), "{}", stderr(&out));
}

#[test]
fn short_history_uses_a_model_fitted_without_labels() {
    let dir = Dir::new();
    // 120 buyers over two weeks: too short for churn labels, enough for BG/NBD.
    let (mut contacts, mut products, mut at) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..120u32 {
        for k in 0..(1 + c % 4) {
            contacts.push(format!("c{c}"));
            products.push(format!("p{}", (c + k) % 7));
            at.push(format!(
                "2024-03-{:02}T{:02}:00:00Z",
                1 + (c * 7 + k * 3) % 14,
                8 + k
            ));
        }
    }
    write_parquet(
        &dir.join("orders.parquet"),
        vec![
            ("contact_id", Arc::new(StringArray::from(contacts))),
            ("product_id", Arc::new(StringArray::from(products))),
            ("ordered_at", Arc::new(StringArray::from(at))),
        ],
    );
    dir.write("augur.toml", "[tables.orders]\npath = \"orders.parquet\"\n");
    let out = run(dir.augur().args(["train"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let manifest = metrics(&dir, "models");
    let fallbacks = manifest["fallbacks"].to_string();
    assert!(fallbacks.contains("BG/NBD"), "{fallbacks}");
    let out = run(dir.augur().args(["score", "--out", "p.parquet"]));
    assert_eq!(out.status.code(), Some(0));
    for batch in read_parquet(&dir.join("p.parquet")) {
        let risk = col(&batch, "churn_risk").as_primitive::<Float64Type>();
        assert!(risk.iter().flatten().all(|p| p > 0.0 && p < 1.0));
        assert_eq!(risk.null_count(), 0);
    }
}

#[test]
fn the_snapshot_on_disk_predicts_what_the_history_predicts() {
    use augur_model::{Filters, Mode, Request};
    let dir = Dir::new();
    demo(&dir, 1200);
    let out = run(dir
        .augur()
        .args(["train", "--config", "demo/augur.toml", "--models", "models"]));
    assert_eq!(out.status.code(), Some(0));
    let artifact = augur_model::Artifact::load(&dir.join("models")).expect("load");
    let config = augur_data::Config::load(Some(&dir.join("demo/augur.toml")))
        .expect("config")
        .0;
    let (history, _) = augur_data::load(&config).expect("load");
    let models = artifact.models();
    let rebuilt = augur_model::build_snapshot(&history, artifact.manifest.as_of_seconds, &models)
        .expect("build");
    let on_disk = &artifact.snapshot;
    assert_eq!(on_disk.len(), 1200);
    let discover = Request {
        mode: Mode::Discover,
        k: 5,
        filters: Filters {
            in_stock_only: true,
            exclude: vec![0, 1],
            categories: vec![0],
        },
    };
    let mut scored = 0;
    for request in [augur_model::default_request(), discover] {
        for c in 0..on_disk.len() {
            let a = on_disk.predict(&models, c, &request);
            assert_eq!(a, rebuilt.predict(&models, c, &request), "contact {c}");
            // The stored send-time summary is what the model computes afresh.
            let fresh = models.send_time.predict(on_disk.engagement(c));
            assert_eq!(
                (
                    &a.best_send_hours,
                    a.send_time_confidence,
                    a.send_time_source,
                    &a.send_time_profile
                ),
                (
                    &fresh.best_hours,
                    fresh.confidence,
                    fresh.source.name(),
                    &fresh.profile
                ),
                "contact {c}"
            );
            assert!(
                a.recommendations
                    .iter()
                    .all(|(p, _)| request.mode == Mode::Replenish
                        || (!request.filters.exclude.contains(p)
                            && on_disk.products.in_stock[*p as usize]
                            && on_disk.products.category[*p as usize] == 0))
            );
            scored += usize::from(a.churn_risk.is_some());
        }
    }
    assert!(scored > 500, "{scored}");
    // Batch scoring in row groups of 500: three chunks, each scored and written in turn; and in
    // row groups longer than a profile page (1,024 rows), whose profiles take several pages.
    for (rows_per_group, groups) in [(500, 3), (1_100, 2)] {
        let batch = dir.join(&format!("groups{rows_per_group}.parquet"));
        let written = augur_model::write_scores_in_row_groups(
            &batch,
            on_disk,
            &models,
            &augur_model::default_request(),
            rows_per_group,
        )
        .expect("batch");
        assert_eq!(written, 1200);
        let written_groups =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&batch).expect("open"),
            )
            .expect("reader")
            .metadata()
            .num_row_groups();
        assert_eq!(written_groups, groups);
        assert_rows_match_predict(&batch, &artifact);
        no_file_left_like(dir.path(), |name| name.contains(".partial"));
    }
    // A shorter unfiltered list is read from the stored one; forcing the computed path (an
    // exclusion of nothing) gives the same products and scores.
    let short = Request {
        k: 5,
        ..augur_model::default_request()
    };
    let computed = Request {
        filters: Filters {
            exclude: vec![u32::MAX],
            ..Filters::default()
        },
        ..short
    };
    for c in 0..on_disk.len() {
        assert_eq!(
            on_disk.recommend(&models, c, &short),
            on_disk.recommend(&models, c, &computed),
            "contact {c}"
        );
    }

    // A damaged snapshot is refused when the model loads, with the file named: an engagement
    // hour repeated within a contact (it would count twice), then a truncated file.
    let version = artifact.manifest.version.clone();
    let file = dir.join("models").join(&version).join("contacts.arrow");
    let bytes = std::fs::read(&file).expect("read");
    // The manifest's file checks would refuse any change first; without them (a directory from
    // before they existed) the snapshot's own validation must hold.
    forget_file_checks(&dir.join("models").join(&version));
    repeat_an_engagement_hour(&file);
    let out = run(dir
        .augur()
        .args(["score", "--models", "models", "--out", "p.parquet"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("contacts.arrow") && stderr(&out).contains("repeats an hour"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = run(dir
        .augur()
        .args(["score", "--models", "models", "--out", "p.parquet"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("contacts.arrow"), "{}", stderr(&out));
}

/// Rewrites a snapshot's `contacts.arrow` with the first contact that engaged in two hours
/// engaging twice in its first hour instead.
/// Removes the file checks from a version's manifest, as directories written before them lack.
fn forget_file_checks(version_dir: &std::path::Path) {
    let path = version_dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("json");
    manifest.as_object_mut().expect("object").remove("files");
    std::fs::write(&path, manifest.to_string()).expect("write manifest");
}

fn repeat_an_engagement_hour(file: &std::path::Path) {
    use arrow::array::{ListArray, RecordBatch, UInt8Array};
    let reader =
        arrow::ipc::reader::FileReader::try_new(std::fs::File::open(file).expect("open"), None)
            .expect("snapshot");
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    assert_eq!(batches.len(), 1, "the snapshot is one batch");
    let at = schema.index_of("engagement_hour").expect("column");
    let (field, offsets, values, nulls) =
        batches[0].column(at).as_list::<i32>().clone().into_parts();
    let mut hours = values
        .as_primitive::<arrow::datatypes::UInt8Type>()
        .values()
        .to_vec();
    let first = offsets
        .windows(2)
        .find(|w| w[1] - w[0] >= 2)
        .expect("a contact with two engagement hours")[0] as usize;
    hours[first + 1] = hours[first];
    let mut columns = batches[0].columns().to_vec();
    columns[at] = Arc::new(ListArray::new(
        field,
        offsets,
        Arc::new(UInt8Array::from(hours)),
        nulls,
    ));
    let damaged = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let mut writer = arrow::ipc::writer::FileWriter::try_new(
        std::fs::File::create(file).expect("create"),
        &schema,
    )
    .expect("writer");
    writer.write(&damaged).expect("write");
    writer.finish().expect("finish");
}

#[test]
fn trainings_at_once_get_their_own_versions_and_mixed_files_are_refused() {
    let dir = Dir::new();
    demo(&dir, 600);
    // Two trainings into one models folder at the same moment (different as-of times, so that
    // their files differ).
    let start = |as_of: &str| {
        dir.augur()
            .args([
                "train",
                "--config",
                "demo/augur.toml",
                "--models",
                "models",
                "--as-of",
                as_of,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn a training")
    };
    let (a, b) = (start("2026-09-01"), start("2026-10-01"));
    for child in [a, b] {
        let out = child.wait_with_output().expect("training");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut versions: Vec<String> = std::fs::read_dir(dir.join("models"))
        .expect("models")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "current")
        .collect();
    versions.sort();
    assert_eq!(
        versions.len(),
        2,
        "two versions and nothing half-written: {versions:?}"
    );
    assert!(versions.iter().all(|v| !v.starts_with('.')), "{versions:?}");
    for v in &versions {
        let out = run(dir.augur().args([
            "score",
            "--models",
            &format!("models/{v}"),
            "--out",
            "p.parquet",
        ]));
        assert_eq!(out.status.code(), Some(0), "{v}: {}", stderr(&out));
    }
    // A directory holding another training's file is refused, naming the file.
    std::fs::copy(
        dir.join("models").join(&versions[0]).join("contacts.arrow"),
        dir.join("models").join(&versions[1]).join("contacts.arrow"),
    )
    .expect("copy");
    let out = run(dir.augur().args([
        "score",
        "--models",
        &format!("models/{}", versions[1]),
        "--out",
        "p.parquet",
    ]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("contacts.arrow") && err.contains("does not belong"),
        "{err}"
    );
}

/// Leaves what a killed writer leaves in `dir`: a half-written output named `name` and its lock
/// file, unlocked (the lock died with the process). Returns both paths.
fn killed_writers_leftovers(dir: &Path, name: &str) -> [std::path::PathBuf; 2] {
    let output = dir.join(name);
    if name.starts_with('.') {
        std::fs::create_dir_all(&output).expect("half a version");
        std::fs::write(output.join("churn.json"), "{").expect("half a file");
    } else {
        std::fs::write(&output, b"PAR1 half").expect("half a file");
    }
    let lock = dir.join(format!("{name}.lock"));
    std::fs::write(&lock, b"").expect("lock file");
    [output, lock]
}

#[test]
fn what_a_killed_score_or_train_left_is_removed_by_the_next_and_a_live_ones_kept() {
    let dir = Dir::new();
    demo(&dir, 300);
    let train = |dir: &Dir| {
        let out =
            run(dir
                .augur()
                .args(["train", "--config", "demo/augur.toml", "--models", "models"]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    train(&dir);
    std::fs::create_dir_all(dir.join("out")).expect("out");
    let killed_score = killed_writers_leftovers(&dir.join("out"), "a.parquet.4242-1.partial");
    let killed_train = killed_writers_leftovers(&dir.join("models"), ".v1.4242-1.partial");
    // Another writer still at work: its lock is held (here by this process).
    let [live, live_lock] = killed_writers_leftovers(&dir.join("out"), "c.parquet.4343-1.partial");
    let held = std::fs::File::options()
        .write(true)
        .open(&live_lock)
        .expect("open");
    held.lock().expect("lock");

    score_into(&dir, "out/b.parquet");
    assert!(dir.join("out/b.parquet").exists());
    for path in &killed_score {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert!(
        live.exists() && live_lock.exists(),
        "a live writer's output was removed"
    );
    drop(held);

    train(&dir);
    for path in &killed_train {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    no_file_left_like(&dir.join("models"), |name| name.starts_with('.'));
}

/// Asserts that no file in `folder` has a name `temporary` says is a writer's temporary one.
fn no_file_left_like(folder: &Path, temporary: impl Fn(&str) -> bool) {
    let left: Vec<_> = std::fs::read_dir(folder)
        .expect("folder")
        .flatten()
        .filter(|e| temporary(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
