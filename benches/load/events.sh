#!/usr/bin/env bash
# Ingest load test of `POST /v1/events` with wrk over loopback: batches of 1,000 distinct events
# (carts, views and order lines), each batch stored durably before its answer. Not a test:
# figures for the README. Needs wrk (`apt-get install wrk`) and a trained model directory.
#
#   benches/load/events.sh [MODELS_DIR] [DURATION] [CONNECTIONS]
#   e.g. benches/load/events.sh models 10s 4
set -euo pipefail
cd "$(dirname "$0")/../.."
MODELS=${1:-models}
DURATION=${2:-10s}
CONNECTIONS=${3:-4}
BATCHES=${BATCHES:-600}
KEY=load-test-key-0123456789abcdef
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin augur -p augur
BIN=target/release

cat > "$WORK/serve.toml" <<TOML
[serve]
listen = "127.0.0.1:8092"
max_body_bytes = 4194304
[events]
store = "$WORK/events.sqlite"
TOML

export AUGUR_SERVE__API_KEY=$KEY
$BIN/augur -q serve --config "$WORK/serve.toml" --models "$MODELS" > "$WORK/serve.out" 2>&1 &
for _ in $(seq 1 600); do
    curl -sf http://127.0.0.1:8092/readyz > /dev/null 2>&1 && break
    sleep 0.1
done
curl -sf http://127.0.0.1:8092/readyz > /dev/null || { cat "$WORK/serve.out"; exit 1; }

# $BATCHES distinct bodies of 1,000 events each, made before the clock starts; a run that
# cycles through them all would store duplicates, so the script says when it did.
cat > "$WORK/events.lua" <<LUA
local bodies = {}
local now = os.time() - 3600
local kinds = {"view", "add_to_cart", "view", "checkout"}
for b = 1, $BATCHES do
    local events = {}
    for i = 1, 1000 do
        local n = (b - 1) * 1000 + i
        local contact = "L" .. (n % 50000)
        if i % 10 == 0 then
            events[i] = string.format('{"type":"order","contact_id":"%s","occurred_at":%d,"order_id":"LO%d","product_id":"P%05d","quantity":1,"unit_price":9.5}', contact, now + n % 3600, n, n % 500)
        else
            events[i] = string.format('{"type":"web","event":"%s","event_id":"e%d","contact_id":"%s","occurred_at":%d,"product_id":"P%05d"}', kinds[n % 4 + 1], n, contact, now + n % 3600, n % 500)
        end
    end
    bodies[b] = '{"events":[' .. table.concat(events, ",") .. ']}'
end
local i = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
request = function()
    i = i % #bodies + 1
    return wrk.format(nil, "/v1/events", nil, bodies[i])
end
done = function(summary, latency, requests)
    io.write(string.format("batches %d (%d distinct), events/s %.0f, latency p50 %.1f ms, p99 %.1f ms, non-2xx %d\n",
        summary.requests, math.min(summary.requests, #bodies),
        summary.requests * 1000 / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.status))
end
LUA
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/events.lua" http://127.0.0.1:8092 | tail -1
echo "stored: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$WORK/events.sqlite")"
