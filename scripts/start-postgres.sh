#!/bin/sh
# Start a throwaway PostgreSQL for the store tests and print its URL.
#
#   URL=$(sudo scripts/start-postgres.sh [PORT])    # default port 55432
#   PBTP_TEST_POSTGRES_URL=$URL python -m pytest tests/store tests/web
#   sudo scripts/start-postgres.sh --stop DIR       # DIR is printed on stderr
#
# Run as root on Debian/Ubuntu: installs the `postgresql` package with apt-get
# if no initdb is found, then initialises a cluster in a new temporary folder
# owned by the postgres user, listening on 127.0.0.1 only, with trust
# authentication (it is for tests: never expose it). Needs psycopg 3 in the
# venv: pip install "psycopg[binary]".
set -eu

find_bin() {
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    done
    return 1
}

as_postgres() {
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
    else su postgres -s /bin/sh -c "$*"; fi
}

if [ "$(id -u)" != 0 ]; then
    echo "start-postgres.sh: run as root (it may apt-get install postgresql)" >&2
    exit 2
fi

if [ "${1:-}" = "--stop" ]; then
    dir=${2:?usage: start-postgres.sh --stop DIR}
    bin=$(find_bin)
    as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    rm -rf "$dir"
    exit 0
fi

port=${1:-${PBTP_PG_PORT:-55432}}
case $port in *[!0-9]*|'') echo "start-postgres.sh: bad port '$port'" >&2; exit 2;; esac

if ! bin=$(find_bin); then
    echo "start-postgres.sh: installing postgresql with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(find_bin)
fi

dir=$(mktemp -d /tmp/pbtp-postgres.XXXXXX)
chown postgres "$dir"
chmod 700 "$dir"
as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres pbtp_test

echo "PostgreSQL on 127.0.0.1:$port (data in $dir); stop it with:" >&2
echo "  $0 --stop $dir" >&2
echo "postgresql://postgres@127.0.0.1:$port/pbtp_test"
