"""Builds and runs notebooks/quality.ipynb: what a data team checks in a trained model.

    python notebooks/make_quality_notebook.py MODEL_DIR REPLENISH.parquet DISCOVER.parquet

MODEL_DIR is a model version directory of `augur train` on the Complete Journey as of
2017-10-01 (benches/quality/run.sh leaves one, with both `augur score` outputs); the notebook
reads ../shared/eval's protocol for the truth. Needs nbformat, nbclient, ipykernel, matplotlib,
pandas, pyarrow and scikit-learn.
"""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

model, rep, dis = (str(Path(p).resolve()) for p in sys.argv[1:4])
here = Path(__file__).resolve().parent
cells = [
    nbformat.v4.new_markdown_cell(
        "# Checking an augur model on real data\n\n"
        "A model directory written by `augur train` on the Complete Journey as of 2017-10-01, and "
        "the predictions of `augur score` (replenish and discover mode), scored against what the "
        "households bought in the 90 days after, with the protocol of `../shared/eval`. "
        "Four checks: is churn risk calibrated, does it rank (lift by decile), do recommendations "
        "hit more often than the peers' lists, and what do send-time profiles look like."),
    nbformat.v4.new_code_cell(
        "import json, sys, numpy as np, pandas as pd, matplotlib.pyplot as plt\n"
        f"sys.path.insert(0, {str(here.parent.parent / 'shared' / 'eval')!r})\n"
        "from protocol import DATASETS, split, churn_labels, rec_truth, rec_metrics\n"
        f"MODEL, REP, DIS = {model!r}, {rep!r}, {dis!r}\n"
        "manifest = json.load(open(MODEL + '/manifest.json'))\n"
        "ds = DATASETS['completejourney']; hist, hold, pop = split(ds)\n"
        "y = pd.Series(churn_labels(hold, pop), index=pop)\n"
        "rep = pd.read_parquet(REP).set_index('contact_id'); dis = pd.read_parquet(DIS).set_index('contact_id')\n"
        "print(manifest['version'], 'as of', manifest['as_of']); print('\\n'.join(manifest['metrics']['served']))"),
    nbformat.v4.new_markdown_cell("## Churn: calibration\nPredicted risk against the observed churn rate, in ten bins of equal size. On the diagonal is calibrated."),
    nbformat.v4.new_code_cell(
        "risk = rep.churn_risk.reindex(pop).fillna(0.5)\n"
        "bins = pd.qcut(risk.rank(method='first'), 10, labels=False)\n"
        "cal = pd.DataFrame({'predicted': risk, 'observed': y}).groupby(bins).mean()\n"
        "ax = cal.plot.scatter('predicted', 'observed'); lim = [0, max(cal.max()) * 1.1]; ax.plot(lim, lim, '--', color='grey')\n"
        "from sklearn.metrics import roc_auc_score, brier_score_loss\n"
        "print(f'ROC AUC {roc_auc_score(y, risk):.4f}  Brier {brier_score_loss(y, risk):.4f}  base rate {y.mean():.4f}')"),
    nbformat.v4.new_markdown_cell("## Churn: lift by decile\nObserved churn in each decile of risk (10 = riskiest) over the base rate."),
    nbformat.v4.new_code_cell(
        "lift = pd.DataFrame({'decile': bins + 1, 'churned': y}).groupby('decile').churned.mean() / y.mean()\n"
        "lift.plot.bar(ylabel='lift over base rate'); lift.round(2).to_frame('lift').T"),
    nbformat.v4.new_markdown_cell("## Recommendations against the peers\nRecall@10 and hit rate on the holdout purchases: augur beside the contact's own most-bought products and popularity (the peers' best on this data set), all items and items new to the household."),
    nbformat.v4.new_code_cell(
        "truth_all, truth_new, bought = rec_truth(hist, hold)\n"
        "popular = hist[hist.t >= ds.T0 - ds.H].groupby('product').customer.nunique().sort_values(ascending=False).index.tolist()\n"
        "cnt = hist.groupby(['customer', 'product']).order.nunique().rename('n').reset_index().sort_values(['customer', 'n'], ascending=[True, False])\n"
        "mine = cnt.groupby('customer')['product'].apply(list).to_dict()\n"
        "own = {c: (mine.get(c, [])[:10] + [p for p in popular if p not in set(mine.get(c, [])[:10])])[:10] for c in truth_all}\n"
        "pop_new = {c: [p for p in popular[:500] if p not in bought.get(c, ())][:10] for c in truth_new}\n"
        "recs = lambda d: {c: list(r) for c, r in d.recommendations.items()}\n"
        "rows = {('all items', 'augur'): rec_metrics(recs(rep), truth_all), ('all items', 'own most-bought'): rec_metrics(own, truth_all),\n"
        "        ('new items', 'augur'): rec_metrics(recs(dis), truth_new), ('new items', 'popularity'): rec_metrics(pop_new, truth_new)}\n"
        "table = pd.DataFrame(rows).T[['recall', 'precision', 'ndcg', 'hit']].astype(float).round(4); table"),
    nbformat.v4.new_markdown_cell("## Send-time profiles\nThe hour-of-day profile (168 hours folded to 24, local time) of four households with the most orders, against the hours they actually shopped in the holdout."),
    nbformat.v4.new_code_cell(
        "first = hold.groupby(['customer', 'order']).t.min().reset_index()\n"
        "top = hist.groupby('customer').order.nunique().sort_values(ascending=False).index[:4]\n"
        "fig, axes = plt.subplots(1, 4, figsize=(16, 3), sharey=True)\n"
        "for ax, c in zip(axes, top):\n"
        "    prof = np.asarray(rep.send_time_profile[c], float).reshape(7, 24).sum(axis=0)\n"
        "    seen = np.bincount(first[first.customer == c].t.dt.hour, minlength=24)\n"
        "    ax.bar(range(24), seen / max(seen.sum(), 1), color='lightgrey', label='holdout orders')\n"
        "    ax.plot(range(24), prof / prof.sum(), color='C0', label='augur profile'); ax.set_title(f'household {c}'); ax.set_xlabel('hour (UTC)')\n"
        "axes[0].legend()"),
]
nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
NotebookClient(nb, timeout=600, kernel_name="python3").execute()
nbformat.write(nb, here / "quality.ipynb")
print("wrote", here / "quality.ipynb")
