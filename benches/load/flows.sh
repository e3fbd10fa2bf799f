#!/usr/bin/env bash
# One tick of `augur flows run` over many enrollments: posts N new contacts with consent and a
# cart each (in batches of 1,000 over HTTP), then times the tick that enrolls them all and
# queues their first reminder, and the tick after it — as `--once` runs (each reads the model
# and the exports first) and as a running `augur flows run` does it (which read them once, at
# its start: the tick's own time, from its output). Not a test: figures for the README.
# Needs demo data (`augur demo-data` or `augur demo`), a model trained on it, and python3.
#
#   benches/load/flows.sh [DEMO_DIR] [MODELS_DIR] [CONTACTS]
#   e.g. benches/load/flows.sh data/demo models 100000
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMO=$(realpath "${1:-data/demo}")
MODELS=$(realpath "${2:-models}")
N=${3:-100000}
KEY=load-test-key-0123456789abcdef
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin augur -p augur
BIN=$(realpath target/release/augur)

cat > "$WORK/augur.toml" <<TOML
[tables.contacts]
path = "$DEMO/contacts.parquet"
[tables.products]
path = "$DEMO/products.parquet"
[tables.email_events]
path = "$DEMO/email_events"
[serve]
listen = "127.0.0.1:8093"
max_body_bytes = 4194304
[events]
store = "events.sqlite"
[campaigns]
outbox = "outbox/augur.sqlite"
TOML
mkdir -p "$WORK/flows"
cat > "$WORK/flows/cart.toml" <<'TOML'
id = "cart"
[trigger]
event = "add_to_cart"
unless = "order"
within = "1h"
[entry]
holdout = 0.1
[sender]
from = "Shop <news@shop.example>"
[content]
html = "body.html"
text = "body.txt"
recommendations = 3
[[steps]]
name = "reminder"
send = { subject = "{{ first_name }}, your cart" }
[[steps]]
name = "a-day"
wait = "23h"
best_hour_within = "3h"
[[steps]]
name = "second"
send = { subject = "Still thinking it over?" }
TOML
echo '<p>Hi {{ first_name }}: {% for p in products %}{{ p.name }} {% endfor %}</p>' > "$WORK/flows/body.html"
echo 'Hi {{ first_name }}, your cart is waiting.' > "$WORK/flows/body.txt"

export AUGUR_SERVE__API_KEY=$KEY
$BIN -q serve --config "$WORK/augur.toml" --models "$MODELS" > "$WORK/serve.out" 2>&1 &
for _ in $(seq 1 600); do
    curl -sf http://127.0.0.1:8093/readyz > /dev/null 2>&1 && break
    sleep 0.1
done
T=$(( $(date +%s) - 3 * 3600 ))
python3 - "$WORK" "$N" "$T" <<'PY'
import json, sys, urllib.request
work, n, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
key = "load-test-key-0123456789abcdef"
def post(events):
    body = json.dumps({"events": events}).encode()
    req = urllib.request.Request("http://127.0.0.1:8093/v1/events", body, {
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
for start in range(0, n, 500):
    events = []
    for i in range(start, min(n, start + 500)):
        c = f"N{i:07d}"
        events.append({"type": "contact", "contact_id": c, "occurred_at": t - 60,
                       "email": f"{c.lower()}@shop.example", "first_name": "Sam", "email_consent": True})
        events.append({"type": "web", "contact_id": c, "occurred_at": t, "event": "add_to_cart",
                       "product_id": "P00001"})
    post(events)
PY
echo "posted $N contacts and carts"
tick() {
    /usr/bin/time -f "%e s, %M KB peak" -o "$WORK/time" $BIN -q flows run \
        --config "$WORK/augur.toml" --flows "$WORK/flows" --models "$MODELS" --once --at "$1"
    cat "$WORK/time"
}
AT=$(date -u -d "@$(( T + 3660 ))" +%Y-%m-%dT%H:%M:%SZ)
# A running `augur flows run` on a copy of the event store, with its own state and outbox.
mkdir -p "$WORK/loop"
cp "$WORK/augur.toml" "$WORK/loop/augur.toml"
sqlite3 "$WORK/events.sqlite" ".backup '$WORK/loop/events.sqlite'" 2>/dev/null \
    || python3 -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d)" \
        "$WORK/events.sqlite" "$WORK/loop/events.sqlite"
$BIN -q flows run --config "$WORK/loop/augur.toml" --flows "$WORK/flows" --models "$MODELS" \
    --interval 3600 > "$WORK/loop/out" 2>&1 &
LOOP=$!
for _ in $(seq 1 1200); do
    grep -q "^tick" "$WORK/loop/out" && break
    kill -0 $LOOP 2>/dev/null || { cat "$WORK/loop/out"; exit 1; }
    sleep 0.5
done
kill $LOOP 2>/dev/null || true
echo "running flows run, its first tick: $(grep "^tick" "$WORK/loop/out" | head -1)"
echo "tick 1 (read $((2 * N)) events, enroll $N, queue the first reminders): $(tick "$AT" | tr '\n' ' ')"
echo "tick 2 (nothing due): $(tick "$AT" | tr '\n' ' ')"
