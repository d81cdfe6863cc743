#!/usr/bin/env bash
# The main job, from a fresh clone: install, compose the March 2024 issue and
# dispatch it to the bundled sample list through the embedded default
# (local SQLite store + outbox sender), then show the dispatch status.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
mkdir -p .pbtp-mailer
.venv/bin/python -m pip install -q -e . >.pbtp-mailer/pip.log 2>&1 || { cat .pbtp-mailer/pip.log; exit 1; }
PM=.venv/bin/pbtp-mailer

# A per-checkout signing secret for unsubscribe links (kept out of git).
mkdir -p .pbtp-mailer
if [ -z "${PBTP_MAILER_SECRET:-}" ]; then
  [ -s .pbtp-mailer/secret ] || .venv/bin/python -c 'import secrets;print(secrets.token_hex(32))' > .pbtp-mailer/secret
  PBTP_MAILER_SECRET="$(cat .pbtp-mailer/secret)"
  export PBTP_MAILER_SECRET
fi

$PM build issues/2024-03.yaml
$PM lists create sample --description "Bundled sample list (fictitious people)" 2>/dev/null || true
$PM lists import sample samples/subscribers-sample.csv
$PM send issues/2024-03.yaml --list sample --sender outbox --yes
$PM status issues/2024-03.yaml
echo "Messages are in .pbtp-mailer/outbox/new/ (a Maildir any mail client can open)."
