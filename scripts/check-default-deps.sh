#!/usr/bin/env bash
# Fails when the default build (normal, dev and build dependencies: what
# `cargo run --example quickstart` and a plain `cargo test` compile) contains a
# crate that links a system database client library. The README's first
# command must work with nothing installed; PostgreSQL and MySQL come in only
# through the `postgres` and `mysql` features.
#
# On failure it prints the path from the workspace to each offending crate,
# so the message names the dependency that pulled it in.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FORBIDDEN=(pq-sys mysqlclient-sys mysqlclient-src pq-src openssl-sys)
EDGES=normal,dev,build

tree=$(cargo tree --workspace -e "$EDGES" --prefix none --format '{p}')
found=()
for crate in "${FORBIDDEN[@]}"; do
    if grep -qE "^$crate v" <<<"$tree"; then found+=("$crate"); fi
done

if ((${#found[@]} == 0)); then
    echo "default build links no system database client: none of ${FORBIDDEN[*]} in 'cargo tree -e $EDGES'"
    exit 0
fi
for crate in "${found[@]}"; do
    echo "the default build contains $crate, which links a system library; pulled in by:"
    cargo tree --workspace -e "$EDGES" --invert "$crate"
    echo
done
echo "FAIL: make the dependency that pulls it in optional, behind the postgres/mysql feature (dev-dependencies cannot be optional: enable the backend through the package's feature instead)"
exit 1
