"""How far each quality figure of benches/quality/run.sh moves by chance, and whether a change moved it.

Usage: python spread.py SHARED_EVAL_DIR CDNOW_MASTER OUT [AGAINST]

OUT (and AGAINST, an earlier run's OUT) hold run.sh's outputs: cj-replenish.parquet,
cj-discover.parquet and cdnow-scores.parquet. For each figure (churn ROC AUC, recall@10 of all
and of new items on the Complete Journey; churn ROC AUC on CDNOW) prints one JSON line with its
value and its standard deviation over 500 bootstrap resamples of the contacts (Efron &
Tibshirani, "An Introduction to the Bootstrap", 1993). With AGAINST, the same resamples score
both runs: the difference and its standard deviation say whether a change is more than chance,
which the two figures' own spreads overstate (the same contacts are hard for both)."""
import json
import os
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, sys.argv[1])
from protocol import DATASETS, churn_labels, rec_truth, split  # noqa: E402

RESAMPLES = 500


def load(path):
    d = pd.read_parquet(path)
    d["contact_id"] = d.contact_id.astype(str).str.replace(r"\.0$", "", regex=True)
    return d.set_index("contact_id")


def auc_figure(labels, risks):
    """ROC AUC per resample, for each run's risks over the same contacts."""
    rng = np.random.default_rng(0)
    n = len(labels)
    out = [[roc_auc_score(labels, r)] for r in risks]
    for _ in range(RESAMPLES):
        i = rng.integers(0, n, n)
        for run, r in zip(out, risks):
            run.append(roc_auc_score(labels[i], r[i]))
    return out


def recall_figure(truth, runs):
    """Recall@10 per resample, from each run's per-contact recall over the same contacts."""
    contacts = [c for c, t in truth.items() if t]
    per = []
    for recs in runs:
        got = {c: list(r)[:10] for c, r in recs.recommendations.items()}
        per.append(np.array([sum(p in truth[c] for p in got.get(c, [])) / len(truth[c]) for c in contacts]))
    rng = np.random.default_rng(0)
    n = len(contacts)
    out = [[p.mean()] for p in per]
    for _ in range(RESAMPLES):
        i = rng.integers(0, n, n)
        for run, p in zip(out, per):
            run.append(p[i].mean())
    return out


def report(name, runs):
    value = runs[0]
    line = {"figure": name, "value": round(value[0], 4), "sd": round(float(np.std(value[1:])), 4)}
    if len(runs) > 1:
        diff = np.array(value) - np.array(runs[1])
        line.update(against=round(runs[1][0], 4), difference=round(diff[0], 4),
                    difference_sd=round(float(np.std(diff[1:])), 4))
    print(json.dumps(line))


def main():
    cdnow_master, dirs = sys.argv[2], sys.argv[3:]
    ds = DATASETS["completejourney"]
    hist, hold, pop = split(ds)
    labels = np.asarray(churn_labels(hold, pop))
    replenish = [load(os.path.join(d, "cj-replenish.parquet")) for d in dirs]
    risks = [r.churn_risk.reindex(pop).fillna(0.5).values for r in replenish]
    report("completejourney churn_auc", auc_figure(labels, risks))
    truth_all, truth_new, _ = rec_truth(hist, hold)
    report("completejourney recs-all recall", recall_figure(truth_all, replenish))
    discover = [load(os.path.join(d, "cj-discover.parquet")) for d in dirs]
    report("completejourney recs-new recall", recall_figure(truth_new, discover))

    if all(os.path.exists(os.path.join(d, "cdnow-scores.parquet")) for d in dirs):
        d = pd.read_csv(cdnow_master, sep=r"\s+")
        d.columns = ["c", "date", "n", "v"]
        d["c"] = d.c.astype(str)
        hold = set(d[(d.date >= 19971001) & (d.date < 19980701)].c)
        ids = sorted(set(d[d.date < 19971001].c))
        labels = np.array([0 if c in hold else 1 for c in ids])
        scores = [pd.read_parquet(os.path.join(x, "cdnow-scores.parquet")).set_index("contact_id") for x in dirs]
        report("cdnow churn_auc", auc_figure(labels, [s.churn_risk.reindex(ids).fillna(0.5).values for s in scores]))


main()
