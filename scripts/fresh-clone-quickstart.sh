#!/usr/bin/env bash
# Runs the README's first command as a new user would: in a fresh clone of
# HEAD, with an empty target dir, and (as root, through a private mount
# namespace) with the database client libraries hidden: the headers, the
# link-time libraries and pkg-config files of libpq and libmariadb /
# libmysqlclient, and pg_config / mariadb_config / mysql_config. Prints the
# wall time. With --fresh-cargo-home the crates are downloaded again too.
#
# Nothing is changed outside the temporary directory; the mounts vanish with
# the namespace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
fresh_home=0
[ "${1:-}" = "--fresh-cargo-home" ] && fresh_home=1

work=$(mktemp -d /tmp/dbscope-fresh-XXXXXX)
git clone -q "$repo" "$work/dbscope"
echo "fresh clone of $(git rev-parse --short HEAD) in $work/dbscope"

hidden=()
for path in /usr/include/postgresql /usr/include/mariadb /usr/include/mysql \
    /usr/lib/x86_64-linux-gnu/libpq.so /usr/lib/x86_64-linux-gnu/libpq.a \
    /usr/lib/x86_64-linux-gnu/libmariadb.so /usr/lib/x86_64-linux-gnu/libmariadb.a \
    /usr/lib/x86_64-linux-gnu/libmariadbclient.so /usr/lib/x86_64-linux-gnu/libmariadbclient.a \
    /usr/lib/x86_64-linux-gnu/libmysqlclient.so /usr/lib/x86_64-linux-gnu/libmysqlclient.a \
    /usr/lib/x86_64-linux-gnu/pkgconfig/libpq.pc /usr/lib/x86_64-linux-gnu/pkgconfig/libmariadb.pc \
    /usr/lib/x86_64-linux-gnu/pkgconfig/mysqlclient.pc \
    /usr/bin/pg_config /usr/bin/mariadb_config /usr/bin/mysql_config; do
    [ -e "$path" ] && hidden+=("$path")
done

script=$(cat <<'INNER'
set -euo pipefail
empty=$(mktemp -d)
for path in "$@"; do
    if [ -d "$path" ]; then mount --bind "$empty" "$path"; else mount --bind /dev/null "$path"; fi
done
echo "hidden: ${*:-nothing was installed}"
cd "$DBSCOPE_FRESH_DIR"
SECONDS=0
cargo run --example quickstart
echo "WALL cargo run --example quickstart: ${SECONDS} s"
INNER
)

export DBSCOPE_FRESH_DIR="$work/dbscope" CARGO_TARGET_DIR="$work/target"
if ((fresh_home)); then export CARGO_HOME="$work/cargo-home"; fi
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    unshare --mount --propagation private bash -c "$script" bash "${hidden[@]}"
else
    echo "not root: the client libraries stay visible (the dependency tree check still proves they are not used)"
    bash -c "$script" bash
fi
rm -rf "$work"
