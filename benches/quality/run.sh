#!/usr/bin/env bash
# Prediction quality on real exports, beside the peers a data scientist would use.
#
#   benches/quality/run.sh                # augur on the Complete Journey and CDNOW
#   PYTHON=/tmp/peersenv/bin/python benches/quality/run.sh   # and the peers, scored alike
#   AUGUR=/path/to/other/augur PEERS=0 benches/quality/run.sh # another build of augur alone, to
#                                                             # compare builds in one session
#   OUT=/tmp/b AGAINST=/tmp/a benches/quality/run.sh          # and say whether it moved a figure
#                                                             # by more than chance (/tmp/a: an
#                                                             # earlier run's OUT)
#
# Trains augur as of the eval protocol's instant (the Complete Journey: 2017-10-01, 90-day
# holdout; CDNOW: 1997-10-01, 39-week holdout), scores every contact with `augur score`, and
# scores the predictions with ../shared/eval/score.py. With a Python that has the peers'
# packages (pandas pyarrow scikit-learn scipy lifetimes implicit: see ../shared/eval/README.md),
# it also runs ../shared/eval/peers.py, so every figure comes from one run on this machine.
# benches/quality/spread.py then gives each figure's bootstrap standard deviation over the
# contacts and, with AGAINST, the paired difference from the earlier run with its own.
# Needs ../shared/data beside the repository; says so and stops when it is not there.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
shared="$root/../shared"
python=${PYTHON:-python3}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
if [ ! -d "$shared/data/completejourney" ]; then
  echo "../shared/data is not here: nothing to measure" >&2
  exit 0
fi
if [ -z "${AUGUR:-}" ]; then
  cargo build --release --quiet
fi
augur=${AUGUR:-$root/target/release/augur}
have_python() { "$python" -c 'import pandas, pyarrow, sklearn' 2>/dev/null; }

echo "== The Complete Journey: augur (as of 2017-10-01, 90-day holdout)"
start=$(date +%s%N)
"$augur" -q train --config benches/quality/completejourney.toml --as-of 2017-10-01 --models "$out/cj" >"$out/cj-train.txt"
echo "train: $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep -E "^(serves|WARNING)" "$out/cj-train.txt" || true
"$augur" -q score --models "$out/cj" --mode replenish --k 10 --out "$out/cj-replenish.parquet"
"$augur" -q score --models "$out/cj" --mode discover --k 10 --out "$out/cj-discover.parquet"
if have_python; then
  (cd "$shared/eval" && "$python" score.py completejourney "$out/cj-replenish.parquet" "$out/cj-discover.parquet")
else
  echo "(no Python with pandas, pyarrow and scikit-learn: set PYTHON to score the predictions)"
fi

echo "== CDNOW: augur churn (as of 1997-10-01, 39-week holdout)"
if have_python; then
  "$python" - "$shared/data/cdnow/CDNOW_master.txt" "$out/cdnow.parquet" <<'PY'
import sys, pandas as pd
d = pd.read_csv(sys.argv[1], sep=r"\s+")
d.columns = ["customer_id", "date", "number_of_cds", "dollar_value"]
pd.DataFrame({"customer_id": d.customer_id.astype(str), "date": d.date.astype(str),
              "dollar_value": d.dollar_value, "product_id": "cd"}).to_parquet(sys.argv[2])
PY
  cat >"$out/cdnow.toml" <<'TOML'
[tables.orders]
path = "cdnow.parquet"
timestamp_format = "%Y%m%d"
[tables.orders.columns]
contact_id = "customer_id"
ordered_at = "date"
unit_price = "dollar_value"
TOML
  "$augur" -q train --config "$out/cdnow.toml" --as-of 1997-10-01 --models "$out/cdnow" >"$out/cdnow-train.txt"
  "$augur" -q score --models "$out/cdnow" --out "$out/cdnow-scores.parquet"
  "$python" - "$shared/data/cdnow/CDNOW_master.txt" "$out/cdnow-scores.parquet" <<'PY'
import sys, json, pandas as pd
from sklearn.metrics import roc_auc_score, brier_score_loss
d = pd.read_csv(sys.argv[1], sep=r"\s+"); d.columns = ["c", "date", "n", "v"]
d["c"] = d.c.astype(str)
hold = set(d[(d.date >= 19971001) & (d.date < 19980701)].c)
p = pd.read_parquet(sys.argv[2]).set_index("contact_id")
ids = sorted(set(d[d.date < 19971001].c))
y = [0 if c in hold else 1 for c in ids]
r = p.churn_risk.reindex(ids).fillna(0.5).values
print(json.dumps(dict(dataset="cdnow", customers=len(ids), churn_auc=round(roc_auc_score(y, r), 4),
                      churn_brier=round(brier_score_loss(y, r), 4))))
PY
else
  echo "(no Python with pandas, pyarrow and scikit-learn: CDNOW needs it to convert the text file)"
fi

if have_python; then
  echo "== Spread: each figure's bootstrap standard deviation over the contacts${AGAINST:+, and the paired difference from $AGAINST}"
  "$python" benches/quality/spread.py "$shared/eval" "$shared/data/cdnow/CDNOW_master.txt" "$out" ${AGAINST:+"$AGAINST"}
fi

if [ "${PEERS:-1}" != 0 ] && have_python && "$python" -c 'import lifetimes, implicit' 2>/dev/null; then
  echo "== The Complete Journey: the peers (../shared/eval/peers.py)"
  (cd "$shared/eval" && "$python" peers.py completejourney)
else
  echo "(peers not run: they need lifetimes and implicit in PYTHON's environment)"
fi
echo "outputs in $out"
