"""CDNOW churn: logistic regression vs gradient-boosted trees on the same RFM-style features.

Why augur's churn model stays a logistic regression: on the real CDNOW history, trees trained the
same honest way (earlier cutoffs, labels that end before the as-of time) rank held-out churn
worse than the linear model, and even fitted on the holdout labels themselves (the `ceiling`
mode, a diagnostic that no real model could use) neither learner passes about 0.772.

    pip install numpy pandas scipy scikit-learn
    python notebooks/cdnow_learners.py [main|ablate|ceiling]

The data path defaults to ../shared/data/cdnow/CDNOW_master.txt next to the repository; set
CDNOW to point elsewhere.

Standard split (README): calibration = purchases before 1997-10-01 (T, day 273 counted from
1997-01-01), holdout = [T, T+273d) i.e. 1997-10-01 .. 1998-06-30, churned = no purchase in the
holdout. Models are trained ONLY on data before T: features at earlier cutoffs c, label = no
purchase in [c, c+H) with c+H <= T. Then applied to features at T, scored on holdout labels.

Mirrors augur's Rust pipeline: order = (customer, date); features = CHURN_FEATURES minus the
e-mail/web/returns columns that are constant on CDNOW; BG/NBD fitted on buyers as of the newest
training cutoff (params reused at every cutoff and at T), p_alive/p_buy as logits.
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from scipy.stats import rankdata

T0 = time.time()
SRC = os.environ.get(
    "CDNOW",
    str(Path(__file__).resolve().parents[2] / "shared/data/cdnow/CDNOW_master.txt"),
)
T = 273  # 1997-10-01 in days since 1997-01-01
HOLD = 273  # 39 weeks

raw = pd.read_csv(SRC, sep=r"\s+", dtype={"customer_id": str, "date": str})
raw["day"] = (pd.to_datetime(raw["date"], format="%Y%m%d") - pd.Timestamp("1997-01-01")).dt.days
cust_codes, cust_index = pd.factorize(raw["customer_id"], sort=True)
raw["c"] = cust_codes
N = len(cust_index)
# one order per (customer, day), as augur's loader does (order id = customer@timestamp)
orders = raw.groupby(["c", "day"], as_index=False).agg(spend=("dollar_value", "sum"),
                                                       cds=("number_of_cds", "sum"))
orders = orders.sort_values(["c", "day"]).reset_index(drop=True)
C = orders["c"].to_numpy()
D = orders["day"].to_numpy()
S = orders["spend"].to_numpy()
Q = orders["cds"].to_numpy()


def bought_between(a, b):
    m = (D >= a) & (D < b)
    out = np.zeros(N, bool)
    out[C[m]] = True
    return out


# ---------------------------------------------------------------- BG/NBD (as in btyd.rs)
def rfa(first, last, n, t):
    x = np.maximum(n - 1, 0).astype(float)
    tx = np.maximum((last - first) / 7.0, 0.0)
    age = np.maximum((t - first) / 7.0, 1e-3)
    return x, tx, age


def bgnbd_nll(logp, x, tx, age):
    r, al, a, b = np.exp(logp)
    common = (gammaln(r + x) - gammaln(r) + r * np.log(al) + gammaln(a + b) + gammaln(b + x)
              - gammaln(b) - gammaln(a + b + x))
    surv = -(r + x) * np.log(al + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.log(a) - np.log(np.maximum(b + x - 1.0, 1e-300)) - (r + x) * np.log(al + tx)
    drop = np.where(x > 0, drop, -np.inf)
    m = np.maximum(surv, drop)
    ll = common + m + np.log(np.exp(surv - m) + np.exp(drop - m))
    v = -ll.sum()
    return v if np.isfinite(v) else 1e300


def bgnbd_fit(x, tx, age):
    res = minimize(bgnbd_nll, np.array([0.0, 1.0, 0.0, 0.0]), args=(x, tx, age),
                   method="Nelder-Mead", options=dict(maxiter=4000, xatol=1e-6, fatol=1e-6))
    return np.exp(res.x)


def bgnbd_palive(p, x, tx, age):
    r, al, a, b = p
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        odds = (a / np.maximum(b + x - 1.0, 1e-12)) * ((al + age) / (al + tx)) ** (r + x)
        pa = 1.0 / (1.0 + odds)
    return np.where(x > 0, np.clip(pa, 1e-9, 1.0), 1.0)


def bgnbd_pbuy(p, x, tx, age, weeks):
    r, al, a, b = p
    rate = (r + x) / (al + age)
    return np.clip(bgnbd_palive(p, x, tx, age) * (1 - np.exp(-rate * weeks)), 1e-9, 1 - 1e-9)


def bgnbd_expected(p, x, tx, age, t):
    """Expected purchases in the next t weeks (Fader-Hardie-Lee eq. 10)."""
    from scipy.special import hyp2f1
    r, al, a, b = p
    z = t / (al + age + t)
    term = (a + b + x - 1) / (a - 1) * (1 - ((al + age) / (al + age + t)) ** (r + x)
                                        * hyp2f1(r + x, b + x, a + b + x - 1, z))
    den = 1 + (x > 0) * a / (b + x - 1 + (x == 0)) * ((al + age) / (al + tx)) ** (r + x)
    return term / den


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


# ---------------------------------------------------------------- features (features.rs)
BASE = ["recency", "frequency", "tenure", "monetary_avg", "monetary_total", "mean_gap",
        "recency_over_gap", "orders_30d", "orders_90d", "orders_trend", "recency_x_frequency",
        "recency_squared", "gap_ratio_x_frequency"]
BTYD = ["btyd_p_alive", "btyd_p_buy"]
EXTRA = ["orders_per_week", "first_spend", "spend_90d", "cds_avg", "orders_180d"]


def features(t, btyd=None, horizon_days=90.0):
    """Feature frame (one row per customer who bought before t) and the customer index."""
    m = D < t
    c, d, s, q = C[m], D[m], S[m], Q[m]
    g = pd.DataFrame({"c": c, "d": d, "s": s, "q": q})
    g["a30"] = (t - d) < 30
    g["a90"] = (t - d) < 90
    g["p90"] = ((t - d) >= 90) & ((t - d) < 180)
    g["a180"] = (t - d) < 180
    g["s90"] = np.where(g["a90"], s, 0.0)
    agg = g.groupby("c").agg(first=("d", "min"), last=("d", "max"), n=("d", "size"),
                             spend=("s", "sum"), o30=("a30", "sum"), o90=("a90", "sum"),
                             p90=("p90", "sum"), o180=("a180", "sum"), s90=("s90", "sum"),
                             cds=("q", "sum"), first_spend=("s", "first"))
    idx = agg.index.to_numpy()
    first, last, n = agg["first"].to_numpy(float), agg["last"].to_numpy(float), agg["n"].to_numpy(float)
    rec = np.maximum(t - last, 0.0)
    ten = np.maximum(t - first, 0.0)
    gap = np.where(n >= 2, np.maximum((last - first) / np.maximum(n - 1, 1), 1.0), ten + 30.0)
    lr = np.log(rec + 1)
    lf = np.log1p(n)
    rog = np.log((rec + 1) / (gap + 1))
    f = pd.DataFrame(index=idx)
    f["recency"] = lr
    f["frequency"] = lf
    f["tenure"] = np.log(ten + 1)
    f["monetary_avg"] = np.log1p(np.maximum(agg["spend"].to_numpy() / np.maximum(n, 1), 0))
    f["monetary_total"] = np.log1p(np.maximum(agg["spend"].to_numpy(), 0))
    f["mean_gap"] = np.log(gap)
    f["recency_over_gap"] = rog
    f["orders_30d"] = np.log1p(agg["o30"].to_numpy())
    f["orders_90d"] = np.log1p(agg["o90"].to_numpy())
    f["orders_trend"] = np.log1p(agg["o90"].to_numpy()) - np.log1p(agg["p90"].to_numpy())
    f["recency_x_frequency"] = lr * lf
    f["recency_squared"] = lr ** 2
    f["gap_ratio_x_frequency"] = rog * lf
    x, tx, age = rfa(first, last, n, t)
    if btyd is not None:
        f["btyd_p_alive"] = logit(bgnbd_palive(btyd, x, tx, age))
        f["btyd_p_buy"] = logit(bgnbd_pbuy(btyd, x, tx, age, horizon_days / 7.0))
    else:
        f["btyd_p_alive"] = 0.0
        f["btyd_p_buy"] = 0.0
    # extras, not in augur (cds is not even loaded by the Rust test)
    f["orders_per_week"] = n / np.maximum(ten / 7.0, 1.0)
    f["first_spend"] = np.log1p(np.maximum(agg["first_spend"].to_numpy(), 0))
    f["spend_90d"] = np.log1p(np.maximum(agg["s90"].to_numpy(), 0))
    f["cds_avg"] = np.log(agg["cds"].to_numpy() / n)
    f["orders_180d"] = np.log1p(agg["o180"].to_numpy())
    f["_raw_rec"] = rec
    f["_raw_n"] = n
    f["_raw_ten"] = ten
    return f, idx, (x, tx, age)


def fit_btyd_at(t):
    f, idx, (x, tx, age) = features(t)
    return bgnbd_fit(x, tx, age)


def examples(cutoffs, H, btyd_mode="newest", min_tenure=0):
    """Stacked training rows. btyd_mode: 'newest' (Rust: fitted on buyers as of the newest
    cutoff, reused), 'each' (refit per cutoff on that cutoff's buyers), None."""
    newest = max(cutoffs)
    p_newest = fit_btyd_at(newest) if btyd_mode == "newest" else None
    frames, ys, cs = [], [], []
    for c in sorted(cutoffs, reverse=True):
        assert c + H <= T, "label window must end by the as-of time"
        p = p_newest if btyd_mode == "newest" else (fit_btyd_at(c) if btyd_mode == "each" else None)
        f, idx, _ = features(c, p, H)
        keep = f["_raw_ten"].to_numpy() >= min_tenure
        f, idx = f[keep], idx[keep]
        y = ~bought_between(c, c + H)[idx]
        frames.append(f)
        ys.append(y)
        cs.append(np.full(len(f), c))
    return pd.concat(frames), np.concatenate(ys), np.concatenate(cs), p_newest


# ---------------------------------------------------------------- evaluation frame at T
y_hold = ~bought_between(T, T + HOLD)
assert abs(y_hold.mean() - 0.701) < 0.005, y_hold.mean()


def auc(score):
    return roc_auc_score(y_hold, score)


# ---------------------------------------------------------------- models
def lr_model(Xtr, ytr, Xte, C_=1.0):
    sc = StandardScaler().fit(Xtr)
    m = LogisticRegression(C=C_, max_iter=2000).fit(sc.transform(Xtr), ytr)
    return m.predict_proba(sc.transform(Xte))[:, 1], m


def hgb_model(Xtr, ytr, Xte, cols, mono=None, **kw):
    params = dict(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=50,
                  early_stopping=False, random_state=0)
    params.update(kw)
    mc = None
    if mono:
        mc = [mono.get(c, 0) for c in cols]
    m = HistGradientBoostingClassifier(monotonic_cst=mc, **params).fit(Xtr, ytr)
    return m.predict_proba(Xte)[:, 1], m


def binned_lr(ftr, ytr, fte, cols, nbins=10):
    """One-hot quantile bins of recency (days) and frequency (orders), plus the other columns."""
    def design(f, edges_r):
        rb = np.digitize(f["_raw_rec"].to_numpy(), edges_r)
        nb = np.minimum(f["_raw_n"].to_numpy(), 8).astype(int)
        R = np.eye(len(edges_r) + 1)[rb]
        F = np.eye(9)[nb]
        RF = np.eye(3)[np.minimum(nb, 3) - 1]  # 1, 2, 3+ orders
        inter = (R[:, :, None] * RF[:, None, :]).reshape(len(f), -1)
        return np.hstack([R, F, inter, f[cols].to_numpy()])
    qs = np.unique(np.quantile(ftr["_raw_rec"], np.linspace(0, 1, nbins + 1)[1:-1]))
    Xtr, Xte = design(ftr, qs), design(fte, qs)
    return lr_model(Xtr, ytr, Xte)[0]


MONO_R = {"recency": 1}
MONO_RF = {"recency": 1, "frequency": -1, "orders_30d": -1, "orders_90d": -1,
           "monetary_total": -1, "btyd_p_alive": -1, "btyd_p_buy": -1}


def run_setup(name, cutoffs, H, btyd_mode="newest", min_tenure=0, extra=False, drop=(),
              verbose=True, hgb_variants=True):
    t0 = time.time()
    ftr, ytr, ctr, p_newest = examples(cutoffs, H, btyd_mode, min_tenure)
    # scoring at T: Rust reuses the training BG/NBD params; in 'each' mode use params fitted at T
    p_T = p_newest if btyd_mode == "newest" else (fit_btyd_at(T) if btyd_mode == "each" else None)
    fte, idx, _ = features(T, p_T, H)
    assert len(idx) == N and (idx == np.arange(N)).all()
    cols = BASE + (BTYD if btyd_mode else []) + (EXTRA if extra else [])
    cols = [c for c in cols if c not in drop]
    Xtr, Xte = ftr[cols].to_numpy(), fte[cols].to_numpy()
    res = {}
    p_lr, _ = lr_model(Xtr, ytr, Xte)
    res["LR"] = auc(p_lr)
    p_hgb, _ = hgb_model(Xtr, ytr, Xte, cols)
    res["HGB"] = auc(p_hgb)
    if hgb_variants:
        p_hgbm, _ = hgb_model(Xtr, ytr, Xte, cols, MONO_R)
        res["HGB mono(rec)"] = auc(p_hgbm)
        p_hgbm2, _ = hgb_model(Xtr, ytr, Xte, cols, MONO_RF)
        res["HGB mono(rec,freq,...)"] = auc(p_hgbm2)
        res["LR binned R/F"] = auc(binned_lr(ftr, ytr, fte, cols))
        res["avg LR+HGB (rank)"] = auc(rankdata(p_lr) + rankdata(p_hgb))
        res["avg LR+HGB (prob)"] = auc(p_lr + p_hgb)
    rfm_cols = ["recency", "frequency", "monetary_avg"]
    res["RFM LR (3 cols)"] = auc(lr_model(ftr[rfm_cols].to_numpy(), ytr, fte[rfm_cols].to_numpy())[0])
    if verbose:
        print(f"\n== {name}: cutoffs(days since 1997-01-01)={sorted(cutoffs)} H={H}d btyd={btyd_mode} "
              f"min_tenure={min_tenure} extra={extra} drop={list(drop)}  rows={len(ytr)} "
              f"train churn={ytr.mean():.3f}  [{time.time() - t0:.0f}s]")
        for k, v in res.items():
            print(f"   {k:26s} {v:.4f}")
    return res, (p_lr, p_hgb), p_T


if __name__ == "__main__":
    print(f"customers {N}, holdout churn {y_hold.mean():.4f}")
    # ---- references at T (unsupervised / single feature)
    fT, _, (x, tx, age) = features(T)
    print(f"recency alone            {auc(fT['_raw_rec']):.4f}")
    print(f"frequency alone          {auc(-fT['_raw_n']):.4f}")
    pT = bgnbd_fit(x, tx, age)
    print(f"BG/NBD params at T (r, alpha, a, b) = {np.round(pT, 4)}")
    print(f"BG/NBD E[holdout purchases] {auc(-bgnbd_expected(pT, x, tx, age, 39.0)):.4f}")
    print(f"BG/NBD P(alive) at T     {auc(-bgnbd_palive(pT, x, tx, age)):.4f} (one-time buyers are alive by definition, hence below 0.5)")
    sys.stdout.flush()
    # Rust plan: first=day 0, as_of=273, horizon=min(90, 273/3)=90, 4 cutoffs half a horizon apart
    RUST = [T - 90 - 45 * k for k in range(4)]  # 183, 138, 93, 48 (all >= 30)
    MODE = sys.argv[1] if len(sys.argv) > 1 else "main"
    if MODE == "main":
        run_setup("A: Rust plan, 4 stacked, H=90", RUST, 90)
        run_setup("B: single cutoff T-90 (1997-07-03), H=90", [T - 90], 90)
        run_setup("C: 10 stacked step 15d, H=90", [T - 90 - 15 * k for k in range(10)], 90)
        run_setup("D: H=135, 3 stacked step 45", [T - 135 - 45 * k for k in range(3)], 135)
        run_setup("E: single cutoff T-180, H=180", [T - 180], 180)
    elif MODE == "ceiling":
        # Diagnostic only: 5-fold cross-validation on the holdout labels, with monthly order
        # counts and spend added: an upper bound for what purchase history can rank.
        f, _, _ = features(T, fit_btyd_at(T), 273)
        m = D < T
        month = np.minimum(D[m] // 30, 8)
        counts, spend = np.zeros((N, 9)), np.zeros((N, 9))
        np.add.at(counts, (C[m], month), 1)
        np.add.at(spend, (C[m], month), S[m])
        for k in range(9):
            f[f"n_m{k}"] = counts[:, k]
            f[f"s_m{k}"] = np.log1p(spend[:, k])
        cols = BASE + BTYD + EXTRA + [f"n_m{k}" for k in range(9)] + [f"s_m{k}" for k in range(9)]
        X = f[cols].to_numpy()
        p_lr, p_hgb = np.zeros(N), np.zeros(N)
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y_hold):
            p_lr[te] = lr_model(X[tr], y_hold[tr], X[te])[0]
            p_hgb[te] = hgb_model(X[tr], y_hold[tr], X[te], cols)[0]
        print(f"ceiling (fitted on holdout labels): LR {auc(p_lr):.4f} HGB {auc(p_hgb):.4f}")
    elif MODE == "ablate":
        run_setup("A-noBTYD", RUST, 90, btyd_mode=None, hgb_variants=False)
        run_setup("A-btyd-each", RUST, 90, btyd_mode="each", hgb_variants=False)
        run_setup("A-no-tenure", RUST, 90, drop=("tenure",), hgb_variants=False)
        run_setup("A-min_tenure60", RUST, 90, min_tenure=60, hgb_variants=False)
        run_setup("A+extra", RUST, 90, extra=True, hgb_variants=False)
        run_setup("C+extra", [T - 90 - 15 * k for k in range(10)], 90, extra=True, hgb_variants=False)
    print(f"\ntotal {time.time() - T0:.0f}s")
