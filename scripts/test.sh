#!/usr/bin/env bash
# Install everything the tests need (Debian packages when missing, a venv with
# the package and its test extras) and run the whole suite. CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)
# the doctor tests serve their DNS zones with dnsmasq (the binary only, no system service)
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
[ -x /usr/sbin/postfix ] && [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)  # bounces fetch tests (own instance)
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
mkdir -p .pbtp-mailer
.venv/bin/python -m pip install -q -e '.[test]' >.pbtp-mailer/pip.log 2>&1 \
  || { cat .pbtp-mailer/pip.log; exit 1; }

# 1. The whole suite on the embedded default (SQLite).
status=0
.venv/bin/python -m pytest "$@" || status=$?

# 2. The store, unsubscribe and dispatch tests again on a real PostgreSQL
#    (a throw-away cluster on 127.0.0.1; needs root to install/start it).
#    Only for the full run (no arguments) and not when PBTP_SKIP_POSTGRES=1.
if [ $# -eq 0 ] && [ "${PBTP_SKIP_POSTGRES:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  port=$(.venv/bin/python -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  pg_url=$(bash scripts/start-postgres.sh "$port" 2>.pbtp-mailer-pg.log) || { cat .pbtp-mailer-pg.log; exit 1; }
  pg_dir=$(sed -n 's/.*(data in \(.*\)); stop.*/\1/p' .pbtp-mailer-pg.log)
  trap 'bash scripts/start-postgres.sh --stop "$pg_dir" >/dev/null 2>&1 || true; rm -f .pbtp-mailer-pg.log' EXIT
  echo "== the same store, web, dispatch, subscribe and feedback tests on PostgreSQL ($pg_url) =="
  PBTP_TEST_POSTGRES_URL="$pg_url" .venv/bin/python -m pytest -q tests/store tests/web tests/dispatch \
    tests/subscribe tests/feedback \
    || status=$?
fi
exit $status
