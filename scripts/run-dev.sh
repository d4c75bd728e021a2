#!/usr/bin/env bash
# Development start: the sandbox processor, the sidecar and the milter on the
# embedded SQLite store, all from dev/inboxpay.toml (written on first run).
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=${DEV:-dev}
BIN=.venv/bin
[ -f "$DEV/inboxpay.toml" ] || "$BIN/inboxpay" init --dir "$DEV"
CONFIG="$DEV/inboxpay.toml"

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

"$BIN/inboxpay" processor-sandbox --config "$CONFIG" & pids+=($!)
"$BIN/inboxpay" sidecar --config "$CONFIG" & pids+=($!)
"$BIN/inboxpay" milter --config "$CONFIG" & pids+=($!)

cat <<MSG
InboxPay is running from $CONFIG:
  milter             inet:8894@127.0.0.1 (attach Postfix with config/postfix/main.cf.snippet)
  sidecar            http://127.0.0.1:8080  (try: curl http://127.0.0.1:8080/readyz)
  sandbox processor  http://127.0.0.1:8090
A user token for the API:  $BIN/inboxpay token --config $CONFIG --user you@localhost
MSG
wait -n "${pids[@]}"
