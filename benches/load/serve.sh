#!/usr/bin/env bash
# Load test of `augur serve` with wrk over loopback, against a plain axum "hello" ceiling in the
# same run. Not a test: figures for the README. Needs wrk (`apt-get install wrk`) and a trained
# model directory.
#
#   benches/load/serve.sh [MODELS_DIR] [DURATION]
#   e.g. benches/load/serve.sh /tmp/bigmodels 20s
#   INGEST_RATE=20 benches/load/serve.sh /tmp/bigmodels 20s   # while 20 batches of 1,000 events
#                                                            # a second are posted (/v1/events)
set -euo pipefail
cd "$(dirname "$0")/../.."
MODELS=${1:-models}
DURATION=${2:-15s}
THREADS=1
CONNECTIONS=32
KEY=load-test-key-0123456789abcdef
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin augur -p augur
cargo build --release --quiet -p augur-serve --example hello
BIN=target/release

cat > "$WORK/serve.toml" <<TOML
[serve]
listen = "127.0.0.1:8091"
max_concurrent_requests = 4096
max_body_bytes = 4194304
[events]
store = "$WORK/events.sqlite"
[segments.everyone]
description = "every contact (load test)"
rule = { all = [] }
TOML

export AUGUR_SERVE__API_KEY=$KEY
$BIN/examples/hello 127.0.0.1:8090 &
START=$(date +%s.%N)
/usr/bin/time -v $BIN/augur -q serve --config "$WORK/serve.toml" --models "$MODELS" \
    2> "$WORK/serve.time" > "$WORK/serve.out" &
TIMEPID=$!
for _ in $(seq 1 600); do
    curl -sf http://127.0.0.1:8091/readyz > /dev/null 2>&1 && break
    sleep 0.1
done
curl -sf http://127.0.0.1:8091/readyz > /dev/null || { cat "$WORK/serve.time"; exit 1; }
echo "ready after $(echo "$(date +%s.%N) - $START" | bc) s: $(grep -o 'model.*' "$WORK/serve.out")"
AUTH="Authorization: Bearer $KEY"

# Contact ids in random order, from the service itself.
curl -sf -H "$AUTH" "http://127.0.0.1:8091/v1/segments/everyone/contacts?format=csv" \
    | tail -n +2 | cut -d, -f1 | shuf --random-source=<(yes) > "$WORK/ids.txt"
echo "contacts: $(wc -l < "$WORK/ids.txt")"
head -n 20000 "$WORK/ids.txt" > "$WORK/ids20k.txt"

cat > "$WORK/contacts.lua" <<LUA
local ids = {}
for line in io.lines("$WORK/ids20k.txt") do ids[#ids + 1] = line end
local i = 0
wrk.headers["Authorization"] = "Bearer $KEY"
request = function()
    i = i % #ids + 1
    return wrk.format("GET", "/v1/contacts/" .. ids[i])
end
LUA

python3 - "$WORK/ids.txt" "$WORK/batch.json" <<'PY'
import json, sys
ids = [l.strip() for l in open(sys.argv[1])][:1000]
json.dump({"ids": ids}, open(sys.argv[2], "w"))
PY
cat > "$WORK/batch.lua" <<LUA
local f = io.open("$WORK/batch.json"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA

# Hello and the contact lookup alternate, three rounds, so drift on a shared machine hits both.
# Hello's own p99 is printed too: with wrk and the server sharing two cores, part of the tail is
# the scheduler's, whatever the handler does.
rps() { grep -o "Requests/sec: *[0-9.]*" | grep -o "[0-9.]*$"; }
for round in 1 2 3; do
    hello=$(wrk -t$THREADS -c$CONNECTIONS -d"$DURATION" --latency http://127.0.0.1:8090/ | tee "$WORK/hello.$round" | rps)
    hello_p99=$(grep -E "^ +99%" "$WORK/hello.$round" | awk '{print $2}')
    if [ -n "${INGEST_RATE:-}" ]; then
        # One connection posting batches of 1,000 events, paced at INGEST_RATE batches a second.
        AUGUR_KEY=$KEY BATCHES=${BATCHES:-600} DELAY_MS=$((1000 / INGEST_RATE)) \
            wrk -t1 -c1 -d"$DURATION" -s benches/load/event_batches.lua http://127.0.0.1:8091 \
            > "$WORK/ingest.$round" &
        INGEST=$!
    fi
    contact=$(wrk -t$THREADS -c$CONNECTIONS -d"$DURATION" --latency -s "$WORK/contacts.lua" http://127.0.0.1:8091 | tee "$WORK/contacts.$round" | rps)
    if [ -n "${INGEST_RATE:-}" ]; then
        wait "$INGEST"
        echo "round $round, posted meanwhile: $(tail -1 "$WORK/ingest.$round")"
    fi
    p50=$(grep -E "^ +50%" "$WORK/contacts.$round" | awk '{print $2}')
    p99=$(grep -E "^ +99%" "$WORK/contacts.$round" | awk '{print $2}')
    errors=$(grep -E "Non-2xx" "$WORK/contacts.$round" || echo "0 errors")
    echo "round $round: hello (plain axum) $hello req/s, p99 $hello_p99 | GET /v1/contacts/{id} $contact req/s, p50 $p50, p99 $p99, $errors | ratio $(echo "scale=3; $contact / $hello" | bc)"
done
echo "(wrk -t$THREADS -c$CONNECTIONS -d$DURATION over loopback, 20,000 random contacts)"
echo; echo "== POST /v1/score with 1,000 ids, one client"
wrk -t1 -c1 -d"$DURATION" --latency -s "$WORK/batch.lua" http://127.0.0.1:8091/v1/score | grep -E "Requests/sec|50%|99%|Non-2xx"

pkill -TERM -f "^$BIN/augur -q serve" || true
wait $TIMEPID || true
sleep 1
echo; echo "== service memory"
grep -E "Maximum resident" "$WORK/serve.time" || true
