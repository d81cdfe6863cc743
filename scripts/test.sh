#!/usr/bin/env bash
# Install everything the tests need (Debian packages when missing, a venv with
# the package and its test extras) and run the whole suite. CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)
[ -x /usr/sbin/postfix ] && [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "Installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  # postfix asks nothing when told "No configuration"; the tests run their own instance
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

exec .venv/bin/python -m pytest "$@"
