#!/usr/bin/env bash
# Checks that dbscope can live in one dependency graph with sqlx-based crates
# (the README's feature table promises it): Cargo allows one crate per
# `links` value, so two different libsqlite3-sys versions would refuse to
# resolve. Resolves (no build) a throwaway crate in target/ for each
# combination the README lists and fails on the first that does not resolve.
#
# Needs the crates.io index (network to crates.io).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
work=${CARGO_TARGET_DIR:-$root/target}/compat-sqlx
status=0

check() { # name, dbscope dependency spec, other dependencies
    local name=$1 dbscope=$2 others=$3 dir="$work/$1"
    mkdir -p "$dir/src"
    printf 'fn main() {}\n' >"$dir/src/main.rs"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "compat-$name"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
dbscope = { path = "$root", $dbscope }
$others
TOML
    rm -f "$dir/Cargo.lock"
    if out=$(cd "$dir" && cargo generate-lockfile 2>&1); then
        local sqlite
        sqlite=$(grep -A1 '^name = "libsqlite3-sys"' "$dir/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p' | tr '\n' ' ' || true)
        echo "ok   $name: resolves (libsqlite3-sys: ${sqlite:-none})"
    else
        echo "FAIL $name: does not resolve:"
        printf '%s\n' "$out" | sed 's/^/    /'
        status=1
    fi
}

check postgres-with-apalis 'default-features = false, features = ["postgres"]' \
    'apalis = "0.7"
apalis-sql = { version = "0.7", features = ["postgres", "tokio-comp"] }'
check sqlite-with-sqlx-sqlite 'features = ["postgres"]' \
    'sqlx = { version = "0.8", default-features = false, features = ["sqlite", "postgres", "runtime-tokio"] }'
check sqlite-with-sqlx09-sqlite 'features = ["postgres"]' \
    'sqlx = { version = "0.9", default-features = false, features = ["sqlite", "runtime-tokio"] }'
check mysql-with-sqlx-mysql 'default-features = false, features = ["mysql", "async"]' \
    'sqlx = { version = "0.8", default-features = false, features = ["mysql", "runtime-tokio"] }'
exit $status
