#!/usr/bin/env bash
# Campaign throughput: plan a run for every mailable contact of a demo history (rendering
# included), then deliver it over SMTP to a local server (crates/campaign/examples/smtp_sink.rs).
# Not a test: figures for the README.
#
#   benches/load/campaign.sh [CONTACTS] [CONNECTIONS]
#   e.g. benches/load/campaign.sh 50000 8
set -euo pipefail
cd "$(dirname "$0")/../.."
CONTACTS=${1:-50000}
CONNECTIONS=${2:-8}
PORT=2526
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin augur -p augur
cargo build --release --quiet -p augur-campaign --example smtp_sink
BIN=$PWD/target/release
CAMPAIGNS=$PWD/crates/campaign/campaigns

cd "$WORK"
$BIN/augur -q demo-data --contacts "$CONTACTS" --out data > /dev/null
$BIN/augur -q train --config data/augur.toml --models models > /dev/null
cat >> data/augur.toml <<TOML
messages_per_second = 100000
connections = $CONNECTIONS
[campaigns.smtp]
host = "127.0.0.1"
port = $PORT
security = "none"
TOML
# Everyone who may be mailed, sent as soon as planned.
sed -e 's/^id = "winback"/id = "everyone"/' -e 's/^segment = .*/rule = { all = [] }/' \
    -e 's/^window_start = .*/per_contact = false/' -e 's/^quiet = .*//' \
    -e "s|templates/|$CAMPAIGNS/templates/|" -e '/^\[caps\]/,/^per_days/d' \
    "$CAMPAIGNS/winback.toml" > everyone.toml

/usr/bin/time -f "plan: %e s wall, %M KB peak" \
    $BIN/augur -q campaign plan --config data/augur.toml --models models --campaign everyone.toml \
    | head -1
$BIN/examples/smtp_sink 127.0.0.1:$PORT > sink.log &
sleep 0.5
/usr/bin/time -f "send: %e s wall, %M KB peak" \
    $BIN/augur -q campaign send --config data/augur.toml | grep -E "^Sent"
sleep 1.2
echo "sink: $(tail -n 1 sink.log)"
