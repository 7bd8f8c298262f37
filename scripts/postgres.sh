#!/usr/bin/env bash
# Makes sure a PostgreSQL server listens on 127.0.0.1:5432 for the tests, then prints the
# DATABASE_URL to use. Tries, in order: one already running; the Debian cluster
# (pg_ctlcluster); a new throw-away cluster (initdb + pg_ctl) in a temporary directory.
set -euo pipefail
HOST=127.0.0.1
PORT="${VERITY_TEST_PG_PORT:-5432}"
URL="postgres://postgres@$HOST:$PORT/postgres"

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }
wait_ready() {
  for _ in $(seq 1 30); do ready && return 0; sleep 1; done
  return 1
}

if ready; then echo "$URL"; exit 0; fi

if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "postgres: starting the Debian cluster $version/main" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  if wait_ready; then echo "$URL"; exit 0; fi
fi

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ -n "$bin" ] && [ -x "$bin/initdb" ]; then
  dir="$(mktemp -d /tmp/verity-pg.XXXXXX)"
  echo "postgres: starting a throw-away cluster in $dir" >&2
  run=()
  # initdb refuses to run as root.
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; run=(su postgres -s /bin/sh -c); fi
  cmd="'$bin/initdb' -D '$dir/data' -U postgres --auth=trust >'$dir/initdb.log' && '$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -o \"-p $PORT -c listen_addresses=$HOST -k $dir\" start >/dev/null"
  if [ ${#run[@]} -gt 0 ]; then "${run[@]}" "$cmd" >&2; else sh -c "$cmd" >&2; fi
  if wait_ready; then echo "$URL"; exit 0; fi
fi

echo "postgres: no PostgreSQL server could be started on $HOST:$PORT; install PostgreSQL (Debian: postgresql) or set DATABASE_URL" >&2
exit 1
