#!/usr/bin/env bash
# Load test of RFC 8058 one-click unsubscribes (`POST /u/{token}`) while the same service answers
# predictions (`GET /v1/contacts/{id}`), each paced with wrk over loopback. Every one-click names
# a different contact, so each is a real durable write (the preference store, then the event
# store) before its 200. Not a test: figures for the README. Needs wrk and a trained model of the
# demo (contact ids C0000001…).
#
#   benches/load/unsubscribe.sh [MODELS_DIR] [DURATION] [RATE_PER_SECOND] [CONTACTS]
#   e.g. benches/load/unsubscribe.sh models 10s 1000 1000000
#
# STORE=FILE keeps the preference store at FILE (e.g. to plan a campaign against it afterwards);
# PREDICTIONS=0 runs the one-click load alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODELS=${1:-models}
DURATION=${2:-10s}
RATE=${3:-1000}
CONTACTS=${4:-2000}
KEY=load-test-key-0123456789abcdef
WORK=$(mktemp -d)
STORE=${STORE:-$WORK/preferences.sqlite}
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin augur -p augur
BIN=target/release

cat > "$WORK/serve.toml" <<TOML
[serve]
listen = "127.0.0.1:8093"
[events]
store = "$WORK/events.sqlite"
[preferences]
store = "$STORE"
public_url = "http://127.0.0.1:8093"
requests_per_minute = 100000000
TOML

# Twelve connections per load, each waiting 12/RATE s between requests: at most RATE/s each.
N=$(python3 -c "import re,sys; d='$DURATION'; s=int(re.sub('[^0-9]','',d)) * (60 if d.endswith('m') else 1); print(int(s * $RATE * 1.2) + 100)")
$BIN/augur -q contacts link --config "$WORK/serve.toml" --campaign load \
    $(python3 -c "import random; random.seed(7); print(' '.join('C%07d' % random.randint(1, $CONTACTS) for _ in range($N)))") \
    | cut -f2 | sed 's#^http://127.0.0.1:8093##' > "$WORK/paths.txt"

export AUGUR_SERVE__API_KEY=$KEY
$BIN/augur -q serve --config "$WORK/serve.toml" --models "$MODELS" > "$WORK/serve.out" 2>&1 &
for _ in $(seq 1 600); do
    curl -sf http://127.0.0.1:8093/readyz > /dev/null 2>&1 && break
    sleep 0.1
done
curl -sf http://127.0.0.1:8093/readyz > /dev/null || { cat "$WORK/serve.out"; exit 1; }

DELAY=$(python3 -c "print(12 * 1000 / $RATE)")
report='done = function(summary, latency, requests)
    io.write(string.format("%s: %d requests, %.0f/s, latency p50 %.2f ms, p99 %.2f ms, max %.1f ms, non-2xx %d, errors %d\n",
        NAME, summary.requests, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
delay = function() return '"$DELAY"' end'
cat > "$WORK/click.lua" <<LUA
NAME = "one-click unsubscribe"
local paths = {}
for line in io.lines("$WORK/paths.txt") do paths[#paths + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "List-Unsubscribe=One-Click"
request = function()
    i = i + 1
    return wrk.format(nil, paths[(i - 1) % #paths + 1])
end
$report
LUA
cat > "$WORK/predict.lua" <<LUA
NAME = "predictions        "
math.randomseed(11)
wrk.headers["Authorization"] = "Bearer $KEY"
request = function()
    return wrk.format(nil, string.format("/v1/contacts/C%07d", math.random(1, $CONTACTS)))
end
$report
LUA
PREDICT=
if [ "${PREDICTIONS:-1}" = 1 ]; then
    wrk -t1 -c12 -d"$DURATION" --latency -s "$WORK/predict.lua" http://127.0.0.1:8093 | tail -1 &
    PREDICT=$!
fi
wrk -t1 -c12 -d"$DURATION" --latency -s "$WORK/click.lua" http://127.0.0.1:8093 | tail -1
[ -z "$PREDICT" ] || wait "$PREDICT"
echo "contacts unsubscribed in the store: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from preferences where unsubscribed_at is not null').fetchone()[0])" "$STORE")"
