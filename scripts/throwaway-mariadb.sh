#!/usr/bin/env bash
# A throwaway MariaDB instance for fault tests (server restarts): its own data
# directory, port, socket and pid file, grant tables skipped (any user, no
# password). Never touches the shared server on 3306.
#
# Usage: scripts/throwaway-mariadb.sh start|stop|status|url|restart [clean|kill]|destroy
#   THROWAWAY_DIR        parent directory (default /tmp/dbscope-throwaway)
#   THROWAWAY_MYSQL_PORT loopback port (default 33306)
# `start` and `stop` are idempotent. `url` prints the URL tests use
# (THROWAWAY_MYSQL_URL in the integration tests). `restart kill` ends the
# server with SIGKILL (a crash) instead of a clean shutdown. `destroy` stops
# and deletes it.
set -euo pipefail

root="${THROWAWAY_DIR:-/tmp/dbscope-throwaway}"
port="${THROWAWAY_MYSQL_PORT:-33306}"
dir="$root/mariadb-$port"
data="$dir/data"
socket="$dir/mysqld.sock"
pidfile="$dir/mysqld.pid"
log="$dir/server.log"

for tool in mariadb-install-db mariadbd mariadb-admin mariadb; do
  if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
    echo "throwaway-mariadb: \`$tool\` not found; install it: apt-get install mariadb-server mariadb-client" >&2
    exit 1
  fi
done
server="$(command -v mariadbd || echo /usr/sbin/mariadbd)"

pid() {
  [ -f "$pidfile" ] && cat "$pidfile"
}

running() {
  local p
  p="$(pid)" || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

url() {
  echo "mysql://root@127.0.0.1:$port/dbscope_restart"
}

start() {
  if running; then
    return 0
  fi
  mkdir -p "$dir"
  if [ ! -d "$data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$data" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 || {
      cat "$dir/install.log" >&2
      exit 1
    }
  fi
  nohup "$server" --no-defaults --datadir="$data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$socket" --pid-file="$pidfile" --user="$(id -un)" --skip-grant-tables \
    --skip-log-bin --innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
    --log-error="$log" >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    if mariadb-admin --no-defaults --socket="$socket" ping >/dev/null 2>&1; then
      mariadb --no-defaults --socket="$socket" -e "CREATE DATABASE IF NOT EXISTS dbscope_restart"
      return 0
    fi
    sleep 0.1
  done
  echo "throwaway-mariadb: the server did not start; see $log" >&2
  tail -20 "$log" >&2 || true
  exit 1
}

stop() {
  local how="${1:-clean}"
  running || return 0
  local p
  p="$(pid)"
  if [ "$how" = kill ]; then
    kill -9 "$p"
  else
    mariadb-admin --no-defaults --socket="$socket" shutdown >/dev/null 2>&1 || kill "$p"
  fi
  for _ in $(seq 1 600); do
    kill -0 "$p" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 0.1
  done
  echo "throwaway-mariadb: server $p did not stop" >&2
  exit 1
}

case "${1:-}" in
  start) start; url ;;
  stop) stop ;;
  status)
    if running; then echo "running on 127.0.0.1:$port ($data)"; else echo "stopped"; exit 3; fi ;;
  url) url ;;
  restart) stop "${2:-clean}"; start ;;
  destroy) stop kill; rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop|status|url|restart [clean|kill]|destroy" >&2; exit 2 ;;
esac
