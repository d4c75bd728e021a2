#!/usr/bin/env bash
# Development start: the sandbox processor, the sidecar and the milter on the
# embedded SQLite store, all from dev/inboxpay.toml (written on first run), and
# (as root) a private development Postfix with the milter attached that delivers
# you@localhost's mail to the demo inbox. One signed sample invoice is sent through
# it on each start. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=${DEV:-dev}
BIN=.venv/bin
[ -f "$DEV/inboxpay.toml" ] || "$BIN/inboxpay" init --dir "$DEV"
CONFIG="$DEV/inboxpay.toml"
DEMO_USER=you@localhost
SMTP=127.0.0.1:2525

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

# wait_for HOST PORT WHAT PID: until HOST:PORT accepts a connection; fail if PID exits first.
wait_for() {
  local i
  for i in $(seq 1 300); do
    if ! kill -0 "$4" 2>/dev/null; then
      echo "run-dev: $3 exited before listening on $1:$2 (see its output above)" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run-dev: $3 is not listening on $1:$2 after 30 s" >&2
  return 1
}

"$BIN/inboxpay" processor-sandbox --config "$CONFIG" & pids+=($!)
"$BIN/inboxpay" sidecar --config "$CONFIG" & sidecar=$!; pids+=("$sidecar")
"$BIN/inboxpay" milter --config "$CONFIG" & milter=$!; pids+=("$milter")
mta=""
if [ "$(id -u)" -eq 0 ]; then
  "$BIN/inboxpay" dev-mta --config "$CONFIG" --listen "$SMTP" & mta=$!; pids+=("$mta")
else
  echo "run-dev: not root, so no development Postfix (inboxpay dev-mta needs root) and no sample invoice" >&2
fi

wait_for 127.0.0.1 8894 milter "$milter"
wait_for 127.0.0.1 8080 sidecar "$sidecar"
if [ -n "$mta" ]; then
  if wait_for "${SMTP%:*}" "${SMTP#*:}" dev-mta "$mta"; then
    "$BIN/inboxpay" send-sample --config "$CONFIG" --to "$DEMO_USER" --smtp "$SMTP"
  else
    # The rest works without it: say so and go on.
    echo "run-dev: going on without the development MTA and the sample invoice" >&2
    pids=("${pids[@]:0:3}")
    mta=""
  fi
fi

attached="attach Postfix with inboxpay/data/postfix/main.cf.snippet"
[ -z "$mta" ] || attached="attached to the development MTA below"
cat <<MSG
InboxPay is running from $CONFIG:
  milter             inet:8894@127.0.0.1 ($attached)
  sidecar            http://127.0.0.1:8080  (try: curl http://127.0.0.1:8080/readyz)
  sandbox processor  http://127.0.0.1:8090
MSG
if [ -n "$mta" ]; then
  cat <<MSG
  development MTA    $SMTP, the milter attached; mail for $DEMO_USER lands in $DEV/mail/$DEMO_USER/
Another sample invoice:    $BIN/inboxpay send-sample --config $CONFIG --to $DEMO_USER --smtp $SMTP
MSG
fi
cat <<MSG
A user token for the API:  $BIN/inboxpay token --config $CONFIG --user $DEMO_USER
MSG
if grep -q '^demo_maildir' "$CONFIG"; then
  echo "Open http://127.0.0.1:8080/demo/ — the demo inbox (development only)"
else
  echo "($CONFIG has no [sidecar] demo_maildir: add demo_maildir = \"mail/$DEMO_USER\" for the demo inbox)"
fi
wait -n "${pids[@]}"
