//! Model quality on held-out time, against the baselines: the real CDNOW history (when
//! `../shared/data/cdnow` exists), the real Complete Journey baskets (when
//! `../shared/data/completejourney` exists) and the demo history's planted truth.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, StringArray};
use augur_data::Config;
use augur_data::DAY;
use augur_model::{buys_between, churn_features, contact_states};
use augur_train::churn::{self, RFM_COLUMNS};
use augur_train::roc_auc;

use crate::util::{Dir, run, stderr, write_parquet};

fn cdnow_file() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cdnow/CDNOW_master.txt");
    dir.is_file().then_some(dir)
}

/// Writes the CDNOW purchases as an orders Parquet (one line per purchase, product "cd").
fn cdnow_parquet(dir: &Dir, source: &Path) -> Config {
    let text = std::fs::read_to_string(source).expect("read cdnow");
    let (mut ids, mut dates, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 4 {
            ids.push(f[0].to_string());
            dates.push(f[1].to_string());
            values.push(f[3].parse::<f64>().expect("amount"));
        }
    }
    let n = ids.len();
    write_parquet(
        &dir.join("cdnow.parquet"),
        vec![
            ("customer_id", Arc::new(StringArray::from(ids))),
            ("date", Arc::new(StringArray::from(dates))),
            ("dollar_value", Arc::new(Float64Array::from(values))),
            ("product_id", Arc::new(StringArray::from(vec!["cd"; n]))),
        ],
    );
    Config::from_toml(
        "[tables.orders]\npath = \"cdnow.parquet\"\ntimestamp_format = \"%Y%m%d\"\n[tables.orders.columns]\ncontact_id = \"customer_id\"\nordered_at = \"date\"\nunit_price = \"dollar_value\"\n",
        dir.path(),
    )
    .expect("config")
}

#[test]
fn cdnow_churn_beats_recency_and_rfm() {
    let Some(source) = cdnow_file() else {
        eprintln!("skipped: ../shared/data/cdnow is not here");
        return;
    };
    let dir = Dir::new();
    let config = cdnow_parquet(&dir, &source);
    let (history, _) = augur_data::load_checked(&config).expect("load");
    let as_of = 875_664_000; // 1997-10-01T00:00Z
    let holdout_end = as_of + 39 * 7 * DAY;
    let first = history.orders.at[0];
    let plan = churn::plan(first, as_of, 90 * DAY).expect("enough history");
    let (train, newest, btyd) = churn::stacked_examples(&history, &plan.cutoffs, plan.horizon);
    let all: Vec<usize> = (0..augur_model::CHURN_FEATURES.len()).collect();
    let model = churn::fit(
        &train,
        &newest,
        &all,
        1.0,
        plan.horizon as f64 / DAY as f64,
        btyd,
    )
    .expect("fit");
    let rfm = churn::fit(&train, &newest, &RFM_COLUMNS, 1.0, 90.0, btyd).expect("fit rfm");

    let states = contact_states(&history, as_of);
    let bought = buys_between(&history, as_of, holdout_end);
    let (mut p, mut p_rfm, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for (c, s) in states.iter().enumerate() {
        let row = churn_features(s, as_of, model.btyd.as_ref(), model.horizon_days)
            .expect("every CDNOW customer bought before 1997-10-01");
        p.push(model.probability(&row));
        p_rfm.push(rfm.probability(&row));
        labels.push(!bought[c]);
    }
    assert_eq!(labels.len(), 23_570);
    let churn_rate = labels.iter().filter(|l| **l).count() as f64 / labels.len() as f64;
    assert!(
        (churn_rate - 0.701).abs() < 0.005,
        "standard split: {churn_rate}"
    );
    let auc = roc_auc(&p, &labels);
    let auc_rfm = roc_auc(&p_rfm, &labels);
    eprintln!("CDNOW churn ROC AUC: augur {auc:.4}, RFM logistic regression {auc_rfm:.4}");
    // The published references on this split: recency alone 0.759, BG/NBD 0.767, Pareto/NBD
    // 0.770, RFM logistic regression 0.770. augur must beat recency and the RFM regression
    // fitted on the same cutoffs; the 0.78 goal is tracked in the README's quality table.
    assert!(
        auc > 0.759,
        "augur churn AUC {auc:.4} does not beat recency alone (0.759)"
    );
    assert!(
        auc > auc_rfm,
        "augur {auc:.4} vs RFM logistic regression {auc_rfm:.4}"
    );
}

/// The Complete Journey through the real binary with the repository's mapping
/// (`benches/quality/completejourney.toml`), as of the eval protocol's 2017-10-01: training's
/// own backtest on the 90 days before it must rank above every baseline on recommendations
/// (all items and new ones) and send time, and above recency on churn. Nothing here looks at
/// the days after the as-of time.
#[test]
fn completejourney_backtest_beats_the_baselines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root
        .join("../shared/data/completejourney/transactions.parquet")
        .is_file()
    {
        eprintln!("skipped: ../shared/data/completejourney is not here");
        return;
    }
    let dir = Dir::new();
    let config = root.join("benches/quality/completejourney.toml");
    let out = run(dir.augur().args([
        "train",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--as-of",
        "2017-10-01",
        "--models",
        "models",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let version = std::fs::read_to_string(dir.join("models/current")).expect("current");
    let text = std::fs::read_to_string(
        dir.join("models")
            .join(version.trim())
            .join("manifest.json"),
    )
    .expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    let m = &manifest["metrics"];
    let recall = |set: &str, name: &str| {
        m["recommendations"][set][name]["recall_at_10"]
            .as_f64()
            .expect("recall")
    };
    eprintln!(
        "Complete Journey backtest recall@10: all items augur {:.4}, own most-bought {:.4}; new items augur {:.4}, popularity {:.4}",
        recall("all_items", "augur"),
        recall("all_items", "own_most_bought"),
        recall("new_items", "augur"),
        recall("new_items", "popularity")
    );
    for baseline in ["own_most_bought", "popularity"] {
        assert!(
            recall("all_items", "augur") > recall("all_items", baseline),
            "all items vs {baseline}: {}",
            m["recommendations"]["all_items"]
        );
        assert!(
            recall("new_items", "augur") > recall("new_items", baseline),
            "new items vs {baseline}: {}",
            m["recommendations"]["new_items"]
        );
    }
    let send = &m["send_time"];
    assert_eq!(
        send["augur"]["engagement"], "orders_and_web",
        "no e-mail events here: send time is validated on the orders"
    );
    let ll = |name: &str| send[name]["log_likelihood"].as_f64().expect("ll");
    let near = |name: &str| send[name]["within_1h_hit_rate"].as_f64().expect("hit");
    eprintln!(
        "Complete Journey backtest send time: log-likelihood augur {:.4}, global {:.4}",
        ll("augur"),
        ll("global_profile")
    );
    assert!(ll("augur") > ll("global_profile"), "{send}");
    assert!(near("augur") > near("global_profile"), "{send}");
    let week = |name: &str| {
        send[name]["hour_of_week_log_likelihood"]
            .as_f64()
            .expect("hour-of-week ll")
    };
    assert!(week("augur") > week("global_profile"), "{send}");
    let auc = |name: &str| m["churn"][name]["roc_auc"].as_f64().expect("auc");
    eprintln!(
        "Complete Journey backtest churn ROC AUC: augur {:.4}, recency {:.4}, RFM logistic regression {:.4}",
        auc("augur"),
        auc("recency"),
        auc("rfm_logistic")
    );
    assert!(auc("augur") > auc("recency"), "{}", m["churn"]);
}
