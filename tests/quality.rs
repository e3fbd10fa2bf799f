//! Model quality on held-out time, against the baselines: the real CDNOW history (when
//! `../shared/data/cdnow` exists) and the demo history's planted truth.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, StringArray};
use augur_core::Config;
use augur_core::features::{buys_between, churn_features, contact_states};
use augur_core::time::DAY;
use augur_train::churn::{self, RFM_COLUMNS};
use augur_train::metrics::roc_auc;

use crate::util::{Dir, write_parquet};

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
    let (history, _) = augur_core::load::load_checked(&config).expect("load");
    let as_of = 875_664_000; // 1997-10-01T00:00Z
    let holdout_end = as_of + 39 * 7 * DAY;
    let first = history.orders.at[0];
    let plan = churn::plan(first, as_of, 90 * DAY).expect("enough history");
    let (train, newest, btyd) = churn::stacked_examples(&history, &plan.cutoffs, plan.horizon);
    let all: Vec<usize> = (0..augur_core::features::CHURN_FEATURES.len()).collect();
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
