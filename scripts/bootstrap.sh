#!/usr/bin/env bash
# Install what InboxPay and its tests need on a Debian machine, then the venv.
# Idempotent: a second run only checks. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: libmilter-dev builds pymilter; postfix and dnsmasq run the end-to-end
# tests; postgresql provides the server binaries for the throwaway test cluster; chromium
# runs the pane's browser tests (driven by Playwright, never its own browser download);
# m4 builds the private Sendmail test config; systemd brings systemd-analyze for the units;
# nodejs runs the pane's validator tests (node --test, no npm packages);
# roundcube-core, roundcube-sqlite3, php-cli, php-sqlite3 and dovecot-imapd run the Roundcube
# plugin's tests (a private Dovecot and Roundcube under `php -S`, never the system's), and
# openssl makes their issuer key as docs/roundcube.md says.
APT_PACKAGES=(libmilter-dev postfix dnsmasq-base postgresql chromium m4 systemd python3-venv nodejs
  roundcube-core roundcube-sqlite3 php-cli php-sqlite3 dovecot-imapd openssl)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  # Postfix must not configure or start a system instance: tests run private ones.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Sendmail test downloads Debian's sendmail packages (never installs them, they
# conflict with postfix): apt needs its package lists for that, once.
if [ ! -e build/e2e-sendmail/prefix/.unpacked ] && ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
  $SUDO apt-get update -qq
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*; touch "$stamp"
fi
