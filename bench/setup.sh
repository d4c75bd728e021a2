#!/usr/bin/env bash
# Installs what bench/milter_throughput.py compares against, outside the project venv.
# Run as root from anywhere: bench/setup.sh [--profile]
#   - Debian: postfix (smtp-source, smtp-sink), dnsmasq-base, opendkim, libmilter-dev
#   - dkimpy-milter in its own venv (default /tmp/inboxpay-venv-dkimpy), so neither it
#     nor its pymilter build lands in .venv
#   - with --profile: py-spy in /tmp/inboxpay-venv-pyspy, for profiling the milter
# Safe to run again: installed pieces are kept.
set -euo pipefail

DKIMPY_VENV="${INBOXPAY_BENCH_DKIMPY_VENV:-/tmp/inboxpay-venv-dkimpy}"
PYSPY_VENV="${INBOXPAY_BENCH_PYSPY_VENV:-/tmp/inboxpay-venv-pyspy}"
DKIMPY_MILTER_VERSION="1.2.3"

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/setup.sh: run as root (apt-get, and the benchmark starts Postfix)" >&2
    exit 1
fi

missing=()
for pkg in postfix dnsmasq-base opendkim libmilter-dev python3-venv; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    apt-get update -qq
    # Non-interactive: postfix would otherwise ask for a mail setup type.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# The packages start system daemons where systemd runs; the benchmark uses private
# instances only, so a system opendkim is not needed.
if command -v systemctl >/dev/null && systemctl is-active --quiet opendkim 2>/dev/null; then
    echo "note: the system opendkim service is running; the benchmark does not use it"
fi

# Python for the side venvs: the project's interpreter works (pymilter needs its headers).
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$DKIMPY_VENV/bin/dkimpy-milter" ]]; then
    "$PYTHON" -m venv "$DKIMPY_VENV"
    "$DKIMPY_VENV/bin/pip" install -q "dkimpy-milter==$DKIMPY_MILTER_VERSION"
fi
echo "dkimpy-milter: $("$DKIMPY_VENV/bin/pip" show dkimpy-milter | sed -n 's/^Version: //p') in $DKIMPY_VENV"

if [[ "${1:-}" == "--profile" && ! -x "$PYSPY_VENV/bin/py-spy" ]]; then
    "$PYTHON" -m venv "$PYSPY_VENV"
    "$PYSPY_VENV/bin/pip" install -q py-spy
fi
if [[ -x "$PYSPY_VENV/bin/py-spy" ]]; then
    echo "py-spy: $("$PYSPY_VENV/bin/py-spy" --version) in $PYSPY_VENV"
fi
echo "opendkim: $(opendkim -V | head -1)"
echo "postfix: $(postconf -d -h mail_version)"
