# shellcheck shell=bash
# Sets up everything the test suite needs on this machine, then exports the
# server URLs. Source it (`source scripts/test-env.sh`); `scripts/test` and
# `.ci/run` both do, so the README's command and CI cannot drift apart.
#
# 1. Installs what is missing from Debian's packages: the C client libraries
#    the `postgres` and `mysql` features link (libpq, libmariadb), pkg-config,
#    and the servers and their clients.
# 2. Makes sure PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306)
#    answer, starting them if they are down.
# 3. Creates the test databases (dbscope_test, dbscope_faults) and exports
#    PG_DATABASE_URL, PG_FAULTS_DATABASE_URL, MYSQL_DATABASE_URL and
#    MYSQL_FAULTS_DATABASE_URL unless they are already set.
# Fails (returns non-zero) with a message that names what to do when a step
# cannot be done here.

export DEBIAN_FRONTEND=noninteractive
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"

DBSCOPE_PG_HOST=127.0.0.1
DBSCOPE_PG_PORT=5432
DBSCOPE_MY_HOST=127.0.0.1
DBSCOPE_MY_PORT=3306
DBSCOPE_DATABASES=(dbscope_test dbscope_faults)
DBSCOPE_WAIT_SECONDS=60

test_env_step() { printf '\n=== %s\n' "$*"; }
test_env_fail() {
    printf '\ntest-env: %s\n' "$*" >&2
    return 1
}

# Runs a command as root: directly when we are root, else through sudo.
test_env_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        test_env_fail "needs root for: $* (run as root, or install sudo)"
    fi
}

test_env_packages() {
    test_env_step "packages"
    local missing=() pkg
    for pkg in pkg-config libpq-dev libmariadb-dev libmariadb-dev-compat; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ] || missing+=(postgresql)
    command -v pg_isready >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 && command -v mariadb-admin >/dev/null 2>&1 || missing+=(mariadb-client)
    if ((${#missing[@]} == 0)); then
        echo "all present: client libraries (libpq, libmariadb), pkg-config, PostgreSQL and MariaDB"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 \
        || test_env_fail "missing: ${missing[*]}; this script installs them with apt-get (Debian/Ubuntu); install them by hand elsewhere" \
        || return 1
    echo "installing: ${missing[*]}"
    test_env_as_root apt-get update -qq </dev/null || return 1
    test_env_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null || return 1
}

test_env_pg_up() { pg_isready -q -h "$DBSCOPE_PG_HOST" -p "$DBSCOPE_PG_PORT" </dev/null >/dev/null 2>&1; }
test_env_my_up() {
    mariadb-admin -h"$DBSCOPE_MY_HOST" -P"$DBSCOPE_MY_PORT" -uroot --connect-timeout=2 ping </dev/null >/dev/null 2>&1 \
        || mariadb-admin --connect-timeout=2 ping </dev/null >/dev/null 2>&1
}

test_env_wait_for() { # check function
    local i
    for ((i = 0; i < DBSCOPE_WAIT_SECONDS; i++)); do
        "$1" && return 0
        sleep 1
    done
    return 1
}

test_env_servers() {
    test_env_step "PostgreSQL on $DBSCOPE_PG_HOST:$DBSCOPE_PG_PORT"
    if ! test_env_pg_up; then
        local version
        version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
        [ -n "$version" ] || test_env_fail "PostgreSQL is not answering and no cluster is configured under /etc/postgresql" || return 1
        echo "not answering; starting cluster $version/main"
        test_env_as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start </dev/null \
            || echo "pg_ctlcluster returned non-zero; waiting anyway"
        test_env_wait_for test_env_pg_up \
            || test_env_fail "PostgreSQL did not answer within ${DBSCOPE_WAIT_SECONDS}s after 'pg_ctlcluster $version main start'; see /var/log/postgresql/" \
            || return 1
    fi
    echo "PostgreSQL answers"

    test_env_step "MariaDB on $DBSCOPE_MY_HOST:$DBSCOPE_MY_PORT"
    if ! test_env_my_up; then
        echo "not answering; starting /usr/sbin/mariadbd"
        if id mysql >/dev/null 2>&1; then test_env_as_root install -d -o mysql -g mysql /run/mysqld; fi
        test_env_as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd </dev/null \
            || echo "start-stop-daemon returned non-zero; waiting anyway"
        test_env_wait_for test_env_my_up \
            || test_env_fail "MariaDB did not answer within ${DBSCOPE_WAIT_SECONDS}s after starting /usr/sbin/mariadbd; see /var/log/mysql/" \
            || return 1
    fi
    echo "MariaDB answers"
}

test_env_databases() {
    test_env_step "test databases"
    local host=$DBSCOPE_PG_HOST port=$DBSCOPE_PG_PORT pg_auth=postgres db exists
    if ! psql -h "$host" -p "$port" -U postgres -d postgres -w -tAc 'SELECT 1' </dev/null >/dev/null 2>&1; then
        # No trust auth over TCP: give the postgres role a password through the
        # local socket (peer auth as the postgres OS user) and use it in the URLs.
        echo "postgres over TCP needs a password; setting one through the local socket"
        test_env_as_root runuser -u postgres -- psql -p "$port" -d postgres -v ON_ERROR_STOP=1 \
            -c "ALTER ROLE postgres PASSWORD 'postgres'" </dev/null >/dev/null \
            || test_env_fail "cannot log in to PostgreSQL as postgres over TCP, nor set its password through the socket" \
            || return 1
        pg_auth=postgres:postgres
        export PGPASSWORD=postgres
    fi
    for db in "${DBSCOPE_DATABASES[@]}"; do
        exists=$(psql -h "$host" -p "$port" -U postgres -d postgres -w -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '$db'" </dev/null)
        if [ "$exists" != 1 ]; then
            psql -h "$host" -p "$port" -U postgres -d postgres -w -v ON_ERROR_STOP=1 \
                -c "CREATE DATABASE $db" </dev/null >/dev/null || return 1
            echo "PostgreSQL: created $db"
        else
            echo "PostgreSQL: $db exists"
        fi
    done

    local my_auth=root create_sql="" user_sql my_host
    for db in "${DBSCOPE_DATABASES[@]}"; do
        create_sql+="CREATE DATABASE IF NOT EXISTS $db; "
    done
    if mariadb --protocol=TCP -h"$DBSCOPE_MY_HOST" -P"$DBSCOPE_MY_PORT" -uroot -e "$create_sql" </dev/null >/dev/null 2>&1; then
        echo "MariaDB: root over TCP without password works; ${DBSCOPE_DATABASES[*]} exist"
    else
        # Root over TCP refused: create a dedicated user through the local socket
        # (unix_socket auth as the root OS user) with what the tests need: all
        # privileges on the test databases, PROCESS to see other sessions and
        # CONNECTION ADMIN (SUPER before MariaDB 10.5.2) to KILL them.
        echo "MariaDB: root over TCP refused; creating user dbscope through the local socket"
        user_sql="$create_sql"
        for my_host in '%' '127.0.0.1' 'localhost'; do
            user_sql+="CREATE USER IF NOT EXISTS 'dbscope'@'$my_host' IDENTIFIED BY 'dbscope'; "
            for db in "${DBSCOPE_DATABASES[@]}"; do
                user_sql+="GRANT ALL PRIVILEGES ON $db.* TO 'dbscope'@'$my_host'; "
            done
            user_sql+="GRANT PROCESS ON *.* TO 'dbscope'@'$my_host'; "
        done
        test_env_as_root mariadb -uroot -e "$user_sql" </dev/null \
            || test_env_fail "MariaDB refuses root over TCP and over the local socket; cannot create the test user" \
            || return 1
        for my_host in '%' '127.0.0.1' 'localhost'; do
            test_env_as_root mariadb -uroot -e "GRANT CONNECTION ADMIN ON *.* TO 'dbscope'@'$my_host'" </dev/null 2>/dev/null \
                || test_env_as_root mariadb -uroot -e "GRANT SUPER ON *.* TO 'dbscope'@'$my_host'" </dev/null \
                || return 1
        done
        MYSQL_PWD=dbscope mariadb --protocol=TCP -h"$DBSCOPE_MY_HOST" -P"$DBSCOPE_MY_PORT" -udbscope -e 'SELECT 1' </dev/null >/dev/null \
            || test_env_fail "MariaDB: the dbscope user cannot connect over TCP to $DBSCOPE_MY_HOST:$DBSCOPE_MY_PORT" \
            || return 1
        my_auth=dbscope:dbscope
    fi

    : "${PG_DATABASE_URL:=postgres://$pg_auth@$host:$port/dbscope_test}"
    : "${PG_FAULTS_DATABASE_URL:=postgres://$pg_auth@$host:$port/dbscope_faults}"
    : "${MYSQL_DATABASE_URL:=mysql://$my_auth@$DBSCOPE_MY_HOST:$DBSCOPE_MY_PORT/dbscope_test}"
    : "${MYSQL_FAULTS_DATABASE_URL:=mysql://$my_auth@$DBSCOPE_MY_HOST:$DBSCOPE_MY_PORT/dbscope_faults}"
    export PG_DATABASE_URL PG_FAULTS_DATABASE_URL MYSQL_DATABASE_URL MYSQL_FAULTS_DATABASE_URL
    local var
    for var in PG_DATABASE_URL PG_FAULTS_DATABASE_URL MYSQL_DATABASE_URL MYSQL_FAULTS_DATABASE_URL; do
        echo "$var=$(printf '%s' "${!var}" | sed -E 's#(://[^:/@]+:)[^@]*@#\1***@#')"
    done
}

test_env_packages && test_env_servers && test_env_databases
