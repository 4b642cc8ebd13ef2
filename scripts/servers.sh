#!/usr/bin/env bash
# Throwaway PostgreSQL 15 + MariaDB servers (and a pgbouncer in front of the PostgreSQL) for
# Covet.Data's integration tests.
#
#   scripts/servers.sh start          install what is missing (apt), init + start both servers and pgbouncer
#   scripts/servers.sh stop           stop everything and delete the temp dirs (idempotent)
#   scripts/servers.sh env            print `export ...` lines for the tests (eval "$(... env)")
#   scripts/servers.sh status         show what is running
#   scripts/servers.sh restart-pg     full restart of PostgreSQL in place (same port, same data)
#   scripts/servers.sh restart-mysql  full restart of MariaDB in place (same port, same data)
#   scripts/servers.sh stop-pg | start-pg | stop-mysql | start-mysql
#                                     take one server down / bring it back (data kept), for
#                                     "server is unreachable for a while" tests
#   scripts/servers.sh restart-pgbouncer | stop-pgbouncer | start-pgbouncer   the same for pgbouncer
#
# Both servers listen on 127.0.0.1 only, run from mktemp -d directories and hold the user
# `covet` / password `covet_pw` with a database `covet`. Ports can be overridden with
# COVET_PG_PORT / COVET_MYSQL_PORT / COVET_PGBOUNCER_PORT, the state file with COVET_SERVERS_STATE.
#
# pgbouncer (Debian's package; 1.18 on bookworm) listens on 127.0.0.1:56432 in pool_mode = transaction,
# runs as `postgres` (it refuses to run as root) from its own temp dir, authenticates `covet` with
# SCRAM against a plain-text auth_file, and serves two databases, both the PostgreSQL database `covet`:
#   covet         default_pool_size (10) server connections, logged in to PostgreSQL as `covet_pgbouncer`
#                 (SCRAM, password from the same auth_file): its backends are that usename in pg_stat_activity
#   covet_single  pool_size = 1: every client shares ONE server connection, so the session-state
#                 hazards of transaction pooling can be shown deterministically
# `env` exports COVET_TEST_PGBOUNCER / COVET_TEST_PGBOUNCER_SINGLE (Npgsql connection strings),
# COVET_TEST_PGBOUNCER_POOL_SIZE, COVET_TEST_PGBOUNCER_SERVER_USER and COVET_TEST_PGBOUNCER_RESTART.
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

PG_BIN="${COVET_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_PORT="${COVET_PG_PORT:-55432}"
MY_PORT="${COVET_MYSQL_PORT:-53306}"
PGB_PORT="${COVET_PGBOUNCER_PORT:-56432}"
PGB_BIN="${COVET_TEST_PGBOUNCER_BIN:-/usr/sbin/pgbouncer}"
PGB_POOL_SIZE="${COVET_PGBOUNCER_POOL_SIZE:-10}"   # default_pool_size: server connections per db/user pair
STATE_FILE="${COVET_SERVERS_STATE:-/tmp/covet-servers.state}"
LOCK_FILE="${STATE_FILE}.lock"
START_TIMEOUT=60   # seconds each server gets to accept connections

DB_USER=covet
DB_PASS=covet_pw
DB_NAME=covet
# The role pgbouncer logs in to PostgreSQL with (clients log in to pgbouncer as $DB_USER): its
# server connections are then exactly the backends of this user in pg_stat_activity.
PGB_SERVER_USER=covet_pgbouncer

# ---------------------------------------------------------------------------------------
# helpers

log() { echo "servers.sh: $*" >&2; }
die() { echo "servers.sh: ERROR: $*" >&2; exit 1; }

# Serialise concurrent invocations (e.g. two test processes restarting at once).
# fd 9 must NOT leak into the daemons we start, otherwise they would hold the lock forever:
# every daemon launch below closes it with `9>&-`.
take_lock() {
    exec 9>"$LOCK_FILE"
    flock -w 180 9 || die "could not lock $LOCK_FILE within 180 s (another servers.sh still running?)"
}

# State file: shell-sourceable KEY=VALUE lines, rewritten as things change.
# (A state file written before pgbouncer was added has no PGB_DIR: pgbouncer then counts as not started.)
PG_DIR="" MY_DIR="" PGB_DIR=""
load_state() {
    PG_DIR="" MY_DIR="" PGB_DIR=""
    if [[ -f "$STATE_FILE" ]]; then
        # shellcheck disable=SC1090
        source "$STATE_FILE"
    fi
}
save_state() {
    if [[ -z "$PG_DIR" && -z "$MY_DIR" && -z "$PGB_DIR" ]]; then
        rm -f "$STATE_FILE"
        return
    fi
    {
        echo "# written by $SCRIPT_PATH"
        printf 'PG_DIR=%q\n' "$PG_DIR"
        printf 'MY_DIR=%q\n' "$MY_DIR"
        printf 'PGB_DIR=%q\n' "$PGB_DIR"
    } >"$STATE_FILE"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_port_free() {
    if port_open "$1"; then
        die "port $1 on 127.0.0.1 is already in use by something this script does not know about:
$(ss -ltnp "sport = :$1" 2>/dev/null || true)
Stop it (or set COVET_PG_PORT / COVET_MYSQL_PORT / COVET_PGBOUNCER_PORT) and retry."
    fi
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 seconds for pid $1 to exit.
wait_pid_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while pid_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------
# packages

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

ensure_packages() {
    local missing=()
    local p
    for p in mariadb-server mariadb-client pgbouncer; do
        pkg_installed "$p" || missing+=("$p")
    done
    [[ -x "$PG_BIN/postgres" ]] || missing+=(postgresql-15)
    command -v psql >/dev/null || missing+=(postgresql-client-15)
    ((${#missing[@]} == 0)) && return 0

    local apt_log=/tmp/covet-apt.log
    log "installing missing packages: ${missing[*]} (first run only, ~20-60 s; log: $apt_log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q -o Dpkg::Use-Pty=0 "${missing[@]}"; } \
            </dev/null >"$apt_log" 2>&1; then
        tail -n 40 "$apt_log" >&2
        die "apt-get install ${missing[*]} failed (full log: $apt_log)"
    fi

    # Packages may have auto-started their system services (not in Docker-like setups where
    # policy-rc.d forbids it). We never use those; stop them so they hold no ports/resources.
    local svc
    for svc in mariadb pgbouncer postgresql; do
        service "$svc" stop >/dev/null 2>&1 || true
    done
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

pg_ctl_() { (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" "$@" 9>&-); }
pg_psql() { (cd / && runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
                -h "$PG_DIR/sock" -p "$PG_PORT" -U postgres -d postgres); }  # SQL on stdin
pg_pid() { head -n1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true; }

pg_init() {
    PG_DIR="$(mktemp -d -t covet-pg.XXXXXX)"
    save_state   # so `stop` can clean up even if the rest fails
    mkdir -p "$PG_DIR/sock"
    chown -R postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"

    # Superuser `postgres` only via the local socket (trust); TCP needs a password.
    (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$PG_DIR/initdb.log" 2>&1) \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }

    cat >>"$PG_DIR/data/postgresql.conf" <<EOF

# --- covet test settings ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/sock'
max_connections = 300
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
# durability is irrelevant for throwaway test data; clean restarts still keep everything
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    # initdb's pg_hba.conf: local trust, host scram-sha-256 for 127.0.0.1/32 and ::1. Keep it.
}

pg_start() {
    pid_alive "$(pg_pid)" && { log "PostgreSQL already running (pid $(pg_pid))"; return 0; }
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT (data $PG_DIR/data)"
    pg_ctl_ -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t "$START_TIMEOUT" start >/dev/null \
        || pg_fail "pg_ctl start failed"
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
        ((SECONDS < deadline)) || pg_fail "PostgreSQL did not accept connections within ${START_TIMEOUT} s"
        sleep 0.3
    done
}

pg_fail() {
    echo "---- tail of $PG_DIR/postgres.log ----" >&2
    tail -n 30 "$PG_DIR/postgres.log" >&2 2>/dev/null || true
    die "$1"
}

pg_create_user() {
    pg_psql <<EOF || die "creating the PostgreSQL user/database failed"
CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASS';
CREATE DATABASE $DB_NAME OWNER $DB_USER;
CREATE ROLE $PGB_SERVER_USER LOGIN SUPERUSER PASSWORD '$DB_PASS';
EOF
}

pg_stop() {
    [[ -n "$PG_DIR" && -d "$PG_DIR/data" ]] || return 0
    local pid
    pid="$(pg_pid)"
    pid_alive "$pid" || return 0
    log "stopping PostgreSQL (pid $pid)"
    if ! pg_ctl_ -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 &&
       ! pg_ctl_ -D "$PG_DIR/data" -m immediate -w -t 10 stop >/dev/null 2>&1; then
        log "PostgreSQL did not shut down; killing it"
        # backends are in their own sessions, so kill the postmaster's children explicitly
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 10 || true
    fi
}

# ---------------------------------------------------------------------------------------
# MariaDB

my_client() { mariadb --no-defaults -uroot --socket="$MY_DIR/mysqld.sock" "$@"; }
my_pid() { cat "$MY_DIR/mysqld.pid" 2>/dev/null || true; }

my_init() {
    MY_DIR="$(mktemp -d -t covet-my.XXXXXX)"
    save_state
    cat >"$MY_DIR/my.cnf" <<EOF
[mysqld]
user = mysql
datadir = $MY_DIR/data
tmpdir = $MY_DIR/tmp
socket = $MY_DIR/mysqld.sock
pid-file = $MY_DIR/mysqld.pid
log-error = $MY_DIR/mysqld.log
port = $MY_PORT
bind-address = 127.0.0.1
skip-name-resolve
max_connections = 500
# pool tests kill/abort many connections: never block 127.0.0.1 for "too many errors"
max_connect_errors = 1000000
max_allowed_packet = 64M
performance_schema = OFF
skip-log-bin
innodb_buffer_pool_size = 128M
innodb_log_file_size = 48M
innodb_flush_log_at_trx_commit = 2
innodb_doublewrite = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
EOF
    mkdir -p "$MY_DIR/data" "$MY_DIR/tmp"
    chown -R mysql:mysql "$MY_DIR"
    chmod 750 "$MY_DIR"
    # --defaults-file keeps the system's /etc/mysql config out of it entirely.
    mariadb-install-db --defaults-file="$MY_DIR/my.cnf" --user=mysql --skip-test-db \
        --auth-root-authentication-method=socket >"$MY_DIR/install-db.log" 2>&1 9>&- \
        || { cat "$MY_DIR/install-db.log" >&2; die "mariadb-install-db failed"; }
}

my_start() {
    pid_alive "$(my_pid)" && { log "MariaDB already running (pid $(my_pid))"; return 0; }
    log "starting MariaDB on 127.0.0.1:$MY_PORT (data $MY_DIR/data)"
    rm -f "$MY_DIR/mysqld.pid"
    # Own session, no inherited stdio or lock fd: it outlives this script and never holds a
    # caller's pipe (a test capturing our output) or the lock open. `exec` leaves no
    # intermediate shell behind.
    (cd / && exec setsid mariadbd --defaults-file="$MY_DIR/my.cnf" --user=mysql) \
        </dev/null >>"$MY_DIR/mysqld.out" 2>&1 9>&- &
    local pid=$! deadline=$((SECONDS + START_TIMEOUT))
    until mariadb-admin --no-defaults -uroot --socket="$MY_DIR/mysqld.sock" \
            --connect-timeout=2 ping >/dev/null 2>&1 && port_open "$MY_PORT"; do
        pid_alive "$pid" || my_fail "mariadbd exited during startup"
        ((SECONDS < deadline)) || my_fail "MariaDB did not accept connections within ${START_TIMEOUT} s"
        sleep 0.3
    done
}

my_fail() {
    echo "---- tail of $MY_DIR/mysqld.log ----" >&2
    tail -n 30 "$MY_DIR/mysqld.log" "$MY_DIR/mysqld.out" >&2 2>/dev/null || true
    die "$1"
}

my_create_user() {
    # Anonymous accounts (''@'localhost' etc.) would shadow covet@'%' for local logins.
    # ALL PRIVILEGES includes PROCESS, SUPER and CONNECTION ADMIN (KILL, processlist).
    my_client <<EOF || die "creating the MariaDB user/database failed"
DELETE FROM mysql.global_priv WHERE User = '';
FLUSH PRIVILEGES;
CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
CREATE USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost' WITH GRANT OPTION;
CREATE DATABASE $DB_NAME;
EOF
}

my_stop() {
    [[ -n "$MY_DIR" && -d "$MY_DIR" ]] || return 0
    local pid
    pid="$(my_pid)"
    pid_alive "$pid" || return 0
    log "stopping MariaDB (pid $pid)"
    my_client -e 'SHUTDOWN' >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 30; then
        log "MariaDB did not shut down in 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 10 || true
    fi
}

# ---------------------------------------------------------------------------------------
# pgbouncer (in front of the PostgreSQL above, pool_mode = transaction)

pgb_pid() { cat "$PGB_DIR/pgbouncer.pid" 2>/dev/null || true; }

# SQL through pgbouncer as the test user (stdin or -c ...).
pgb_psql() { PGPASSWORD="$DB_PASS" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -w -v ON_ERROR_STOP=1 \
                 -h 127.0.0.1 -p "$PGB_PORT" -U "$DB_USER" "$@"; }

pgb_init() {
    [[ -x "$PGB_BIN" ]] || die "pgbouncer binary $PGB_BIN not found (package pgbouncer; or set COVET_TEST_PGBOUNCER_BIN)"
    PGB_DIR="$(mktemp -d -t covet-pgb.XXXXXX)"
    save_state
    # Plain-text passwords in the auth_file let pgbouncer do SCRAM both ways: with the client as
    # $DB_USER (auth_type) and with PostgreSQL as the `user=` of each database below
    # (PostgreSQL's pg_hba.conf asks for scram-sha-256 over TCP).
    printf '"%s" "%s"\n' "$DB_USER" "$DB_PASS" "$PGB_SERVER_USER" "$DB_PASS" >"$PGB_DIR/userlist.txt"
    cat >"$PGB_DIR/pgbouncer.ini" <<EOF_INI
; written by $SCRIPT_PATH
[databases]
$DB_NAME = host=127.0.0.1 port=$PG_PORT dbname=$DB_NAME user=$PGB_SERVER_USER
${DB_NAME}_single = host=127.0.0.1 port=$PG_PORT dbname=$DB_NAME user=$DB_USER pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
; no unix socket: nothing shared with a system pgbouncer or another copy of this script
unix_socket_dir =
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
auth_type = scram-sha-256
auth_file = $PGB_DIR/userlist.txt
; the console (psql -p $PGB_PORT -U $DB_USER pgbouncer -c 'show pools') for the test user
admin_users = $DB_USER
pool_mode = transaction
default_pool_size = $PGB_POOL_SIZE
min_pool_size = 0
reserve_pool_size = 0
; runuser (PAM) leaves pgbouncer a soft limit of 1024 file descriptors: stay well below it
max_client_conn = 500
; JDBC, psql and some drivers send it in the startup packet; pgbouncer would refuse them otherwise
ignore_startup_parameters = extra_float_digits
; a client queued for a server connection longer than this gets an error (the default is 120 s)
query_wait_timeout = 60
server_login_retry = 1
log_connections = 0
log_disconnections = 0
EOF_INI
    chown -R postgres:postgres "$PGB_DIR"
    chmod 700 "$PGB_DIR"
    chmod 600 "$PGB_DIR/userlist.txt"
}

pgb_start() {
    pid_alive "$(pgb_pid)" && { log "pgbouncer already running (pid $(pgb_pid))"; return 0; }
    log "starting pgbouncer on 127.0.0.1:$PGB_PORT (pool_mode = transaction, in front of 127.0.0.1:$PG_PORT)"
    rm -f "$PGB_DIR/pgbouncer.pid"
    # -d: daemonize (own session, stdio to /dev/null). Never with our lock fd.
    (cd / && runuser -u postgres -- "$PGB_BIN" -d -q "$PGB_DIR/pgbouncer.ini") \
        </dev/null >>"$PGB_DIR/pgbouncer.out" 2>&1 9>&- || pgb_fail "pgbouncer did not start"
    local deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$PGB_PORT" && pid_alive "$(pgb_pid)"; do
        ((SECONDS < deadline)) || pgb_fail "pgbouncer did not listen on $PGB_PORT within ${START_TIMEOUT} s"
        sleep 0.2
    done
}

pgb_fail() {
    echo "---- tail of $PGB_DIR/pgbouncer.log ----" >&2
    tail -n 30 "$PGB_DIR/pgbouncer.log" "$PGB_DIR/pgbouncer.out" >&2 2>/dev/null || true
    die "$1"
}

pgb_stop() {
    [[ -n "$PGB_DIR" && -d "$PGB_DIR" ]] || return 0
    local pid
    pid="$(pgb_pid)"
    pid_alive "$pid" || return 0
    log "stopping pgbouncer (pid $pid)"
    # SIGTERM: immediate shutdown (SIGINT would wait for every client to disconnect).
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 10; then
        log "pgbouncer did not shut down in 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 10 || true
    fi
    rm -f "$PGB_DIR/pgbouncer.pid"
}

# ---------------------------------------------------------------------------------------
# commands

need_state() {
    load_state
    case "$1" in
        pg) [[ -n "$PG_DIR" && -d "$PG_DIR/data" ]] || die "PostgreSQL was not started by '$SCRIPT_PATH start'" ;;
        my) [[ -n "$MY_DIR" && -d "$MY_DIR/data" ]] || die "MariaDB was not started by '$SCRIPT_PATH start'" ;;
        pgb) [[ -n "$PGB_DIR" && -f "$PGB_DIR/pgbouncer.ini" ]] || die "pgbouncer was not started by '$SCRIPT_PATH start'" ;;
    esac
}

do_stop() {
    load_state
    pgb_stop || true   # first: it holds server connections to PostgreSQL
    pg_stop || true
    my_stop || true
    if [[ -n "$PGB_DIR" ]]; then rm -rf -- "$PGB_DIR"; fi
    if [[ -n "$PG_DIR" ]]; then rm -rf -- "$PG_DIR"; fi
    if [[ -n "$MY_DIR" ]]; then rm -rf -- "$MY_DIR"; fi
    PG_DIR="" MY_DIR="" PGB_DIR=""
    rm -f "$STATE_FILE"
}

cmd_start() {
    take_lock
    ensure_packages
    load_state
    if [[ -n "$PG_DIR" || -n "$MY_DIR" || -n "$PGB_DIR" ]]; then
        log "servers from a previous start found; stopping them first"
        do_stop
    fi
    require_port_free "$PG_PORT"
    require_port_free "$MY_PORT"
    require_port_free "$PGB_PORT"

    # Any failure from here on: leave nothing behind.
    trap 'rc=$?; if ((rc != 0)); then log "start failed; cleaning up"; do_stop; fi' EXIT

    local t0=$SECONDS
    pg_init
    pg_start
    pg_create_user
    pgb_init
    pgb_start
    my_init
    my_start
    my_create_user

    # Final check: the test user can log in over TCP with its password on both.
    PGPASSWORD="$DB_PASS" "$PG_BIN/psql" -X -q -w -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" \
        -d "$DB_NAME" -c 'SELECT 1' >/dev/null || die "covet cannot log in to PostgreSQL over TCP"
    mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$MY_PORT" -u "$DB_USER" -p"$DB_PASS" \
        "$DB_NAME" -e 'SELECT 1' >/dev/null || die "covet cannot log in to MariaDB over TCP"
    pgb_psql -d "$DB_NAME" -c 'SELECT 1' >/dev/null \
        || pgb_fail "covet cannot run a query through pgbouncer (127.0.0.1:$PGB_PORT)"
    pgb_psql -d "${DB_NAME}_single" -c 'SELECT 1' >/dev/null \
        || pgb_fail "covet cannot run a query through pgbouncer's ${DB_NAME}_single database"

    trap - EXIT
    log "PostgreSQL 127.0.0.1:$PG_PORT, MariaDB 127.0.0.1:$MY_PORT and pgbouncer 127.0.0.1:$PGB_PORT" \
        "($("$PGB_BIN" --version 2>/dev/null | head -n1), transaction mode) ready in $((SECONDS - t0)) s" \
        "(state: $STATE_FILE)"
}

cmd_env() {
    load_state
    q() { printf 'export %s=%q\n' "$1" "$2"; }
    q COVET_TEST_PG "Host=127.0.0.1;Port=$PG_PORT;Username=$DB_USER;Password=$DB_PASS;Database=$DB_NAME"
    q COVET_TEST_MYSQL "Server=127.0.0.1;Port=$MY_PORT;User ID=$DB_USER;Password=$DB_PASS;Database=$DB_NAME"
    q COVET_TEST_PG_BIN "$PG_BIN"
    q COVET_TEST_PG_DATA "${PG_DIR:+$PG_DIR/data}"
    q COVET_TEST_MYSQL_DATA "${MY_DIR:+$MY_DIR/data}"
    local s
    s="$(printf '%q' "$SCRIPT_PATH")"
    q COVET_TEST_PG_RESTART "$s restart-pg"
    q COVET_TEST_PG_STOP "$s stop-pg"
    q COVET_TEST_PG_START "$s start-pg"
    q COVET_TEST_MYSQL_RESTART "$s restart-mysql"
    q COVET_TEST_MYSQL_STOP "$s stop-mysql"
    q COVET_TEST_MYSQL_START "$s start-mysql"
    # Through pgbouncer (transaction mode). No Reset On Close: Npgsql's own pool must not send DISCARD ALL
    # on every close there (Covet's physical connections are unpooled and never do). Prepared statements
    # are unsafe: pgbouncer < 1.21 does not track them (Max Auto Prepare stays at its default, 0).
    local pgb="Host=127.0.0.1;Port=$PGB_PORT;Username=$DB_USER;Password=$DB_PASS"
    q COVET_TEST_PGBOUNCER "$pgb;Database=$DB_NAME;No Reset On Close=true"
    q COVET_TEST_PGBOUNCER_SINGLE "$pgb;Database=${DB_NAME}_single;No Reset On Close=true"
    local pool_size="$PGB_POOL_SIZE"   # what the running pgbouncer was started with, if there is one
    if [[ -n "$PGB_DIR" && -f "$PGB_DIR/pgbouncer.ini" ]]; then
        pool_size="$(sed -n 's/^default_pool_size = //p' "$PGB_DIR/pgbouncer.ini")"
    fi
    q COVET_TEST_PGBOUNCER_POOL_SIZE "${pool_size:-$PGB_POOL_SIZE}"
    q COVET_TEST_PGBOUNCER_SERVER_USER "$PGB_SERVER_USER"
    q COVET_TEST_PGBOUNCER_RESTART "$s restart-pgbouncer"
}

cmd_status() {
    load_state
    local rc=0
    if [[ -n "$PG_DIR" ]] && pid_alive "$(pg_pid)"; then
        echo "postgresql: running, pid $(pg_pid), 127.0.0.1:$PG_PORT, data $PG_DIR/data"
    else
        echo "postgresql: not running"; rc=1
    fi
    if [[ -n "$MY_DIR" ]] && pid_alive "$(my_pid)"; then
        echo "mariadb:    running, pid $(my_pid), 127.0.0.1:$MY_PORT, data $MY_DIR/data"
    else
        echo "mariadb:    not running"; rc=1
    fi
    if [[ -n "$PGB_DIR" ]] && pid_alive "$(pgb_pid)"; then
        echo "pgbouncer:  running, pid $(pgb_pid), 127.0.0.1:$PGB_PORT, transaction mode, dir $PGB_DIR"
    else
        echo "pgbouncer:  not running"; rc=1
    fi
    return $rc
}

case "${1:-}" in
    start)         cmd_start ;;
    stop)          take_lock; do_stop; log "stopped" ;;
    env)           cmd_env ;;
    status)        cmd_status ;;
    restart-pg)    take_lock; need_state pg; pg_stop; pg_start ;;
    stop-pg)       take_lock; need_state pg; pg_stop ;;
    start-pg)      take_lock; need_state pg; pg_start ;;
    restart-mysql) take_lock; need_state my; my_stop; my_start ;;
    stop-mysql)    take_lock; need_state my; my_stop ;;
    start-mysql)   take_lock; need_state my; my_start ;;
    restart-pgbouncer) take_lock; need_state pgb; pgb_stop; pgb_start ;;
    stop-pgbouncer)    take_lock; need_state pgb; pgb_stop ;;
    start-pgbouncer)   take_lock; need_state pgb; pgb_start ;;
    *)
        echo "usage: $0 start|stop|env|status|restart-pg|restart-mysql|stop-pg|start-pg|stop-mysql|start-mysql|restart-pgbouncer|stop-pgbouncer|start-pgbouncer" >&2
        exit 2 ;;
esac
