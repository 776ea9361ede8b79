#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for fault tests (server restarts): its own
# data directory, port and socket directory, trust auth, no fsync. Never
# touches the shared server on 5432.
#
# Usage: scripts/throwaway-pg.sh start|stop|status|url|restart [fast|immediate]|destroy
#   THROWAWAY_DIR      parent directory (default /tmp/dbscope-throwaway)
#   THROWAWAY_PG_PORT  loopback port (default 55432)
# `start` and `stop` are idempotent. `url` prints the URL tests use
# (THROWAWAY_PG_URL in the integration tests). `destroy` stops and deletes it.
set -euo pipefail

root="${THROWAWAY_DIR:-/tmp/dbscope-throwaway}"
port="${THROWAWAY_PG_PORT:-55432}"
dir="$root/pg-$port"
data="$dir/data"
log="$dir/server.log"

bin=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/pg_ctl" ] && bin="$candidate"
done
if [ -z "$bin" ]; then
  echo "throwaway-pg: no PostgreSQL server binaries; install them: apt-get install postgresql" >&2
  exit 1
fi

# The server refuses to run as root: run its tools as `postgres` then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [ -f "$data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

url() {
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

start() {
  if running; then
    return 0
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
  fi
  as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" \
    start >/dev/null
}

stop() {
  local mode="${1:-fast}"
  if running; then
    as_owner "$bin/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
  fi
}

case "${1:-}" in
  start) start; url ;;
  stop) stop ;;
  status)
    if running; then echo "running on 127.0.0.1:$port ($data)"; else echo "stopped"; exit 3; fi ;;
  url) url ;;
  restart) stop "${2:-fast}"; start ;;
  destroy) stop immediate; rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop|status|url|restart [fast|immediate]|destroy" >&2; exit 2 ;;
esac
