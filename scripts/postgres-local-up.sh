#!/usr/bin/env bash
# A PostgreSQL server on this machine for the Balsam tests and for trying
# `ambs search --evaluator balsam` without a site database: Debian's packages,
# a cluster owned by an ordinary user (initdb refuses root), reachable only on
# localhost with password (scram-sha-256) authentication, and a role and
# database named `balsam`, as Balsam 1 expects.
#
# Usage (as root):  scripts/postgres-local-up.sh [up|down|status]
# Writes the connection (host, port, user, password) as JSON to
# $AMBS_PG_DIR/balsam.json, readable only by the caller (root or $SUDO_USER).
# Idempotent: running it again with the server up changes nothing.
set -euo pipefail
ACTION=${1:-up}
case "$ACTION" in
  -h|--help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"   # the comment above
    exit 0 ;;
  up|down|status) ;;
  *) echo "postgres-local-up.sh: unknown action '$ACTION' (usage: postgres-local-up.sh [up|down|status]; --help)" >&2
     exit 2 ;;
esac
BASE=${AMBS_PG_DIR:-/var/lib/ambs-postgres}
PORT=${AMBS_PG_PORT:-5433}
OSUSER=ambs-pg
DATA=$BASE/data
SOCK=$BASE/run
INFO=$BASE/balsam.json

pgbin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}
as_pg() { runuser -u "$OSUSER" -- "$@"; }

if [ "$(id -u)" != 0 ]; then
  echo "postgres-local-up.sh: run as root (it installs packages and creates a user)" >&2
  exit 1
fi
BIN=$(pgbin || true)
if [ "$ACTION" = down ] || [ "$ACTION" = status ]; then
  if [ -z "$BIN" ] || [ ! -d "$DATA" ]; then echo "no local PostgreSQL cluster in $DATA"; exit 0; fi
  if [ "$ACTION" = down ]; then as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop || true; exit 0; fi
  exec runuser -u "$OSUSER" -- "$BIN/pg_ctl" -D "$DATA" status
fi

if [ -z "$BIN" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  BIN=$(pgbin)
fi
id -u "$OSUSER" >/dev/null 2>&1 || useradd --system --home-dir "$BASE" --shell /usr/sbin/nologin "$OSUSER"
install -d -o "$OSUSER" -g "$OSUSER" -m 755 "$BASE"   # the caller reads $INFO (0600) here
install -d -o "$OSUSER" -g "$OSUSER" -m 700 "$SOCK"

if [ ! -s "$DATA/PG_VERSION" ]; then
  install -d -o "$OSUSER" -g "$OSUSER" -m 700 "$DATA"
  # peer for the owner on the Unix socket, passwords on TCP; no trust anywhere.
  as_pg "$BIN/initdb" -D "$DATA" -U "$OSUSER" --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
fi
CONF="$DATA/postgresql.auto.conf"
want="listen_addresses = 'localhost'
port = $PORT
unix_socket_directories = '$SOCK'
password_encryption = 'scram-sha-256'"
if [ "$(grep -v '^#' "$CONF" 2>/dev/null || true)" != "$want" ]; then
  { echo "# written by scripts/postgres-local-up.sh"; echo "$want"; } > "$CONF.new"
  chown "$OSUSER:$OSUSER" "$CONF.new" && mv "$CONF.new" "$CONF"
  as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$BASE/postgres.log" -w -t 60 start >/dev/null 2>&1; then
    why=$(grep -E 'FATAL|ERROR|could not' "$BASE/postgres.log" 2>/dev/null | tail -n 2 | tr -s '\n' ' ')
    echo "postgres-local-up.sh: PostgreSQL did not start: ${why:-see $BASE/postgres.log}" >&2
    exit 1
  fi
fi

psql_pg() { as_pg "$BIN/psql" -h "$SOCK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ -s "$INFO" ]; then
  PASSWORD=$(sed -n 's/.*"password": *"\([0-9a-f]*\)".*/\1/p' "$INFO")
fi
if [ -z "${PASSWORD:-}" ]; then
  PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
fi
if [ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'balsam'")" != 1 ]; then
  psql_pg -c "CREATE ROLE balsam LOGIN"
fi
# The password goes in on stdin, never on a command line.
echo "ALTER ROLE balsam PASSWORD '$PASSWORD'" | psql_pg
if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = 'balsam'")" != 1 ]; then
  psql_pg -c "CREATE DATABASE balsam OWNER balsam"
fi

OWNER=${SUDO_USER:-root}
umask 077
cat > "$INFO.new" <<JSON
{"host": "localhost", "port": $PORT, "user": "balsam", "password": "$PASSWORD", "database": "balsam"}
JSON
chown "$OWNER" "$INFO.new" && mv "$INFO.new" "$INFO"
echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on localhost:$PORT, database balsam; connection in $INFO"
