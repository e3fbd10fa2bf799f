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

# $BATCHES distinct bodies of 1,000 events each (benches/load/event_batches.lua), made before
# the clock starts.
export AUGUR_KEY=$KEY BATCHES
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/load/event_batches.lua http://127.0.0.1:8092 | tail -1
echo "stored: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$WORK/events.sqlite")"
