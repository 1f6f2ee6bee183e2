#!/usr/bin/env bash
# A real, multi-service Temporal server (frontend, history, matching and worker services in one
# process) on a private PostgreSQL cluster, all on this machine, for tests and rehearsals that want more
# than the dev server. Everything lives under one state folder (default .temporal-postgres in the project):
#   pg/        the PostgreSQL cluster (owned by the `postgres` user when run as root: PostgreSQL refuses
#              to run as root); it listens on 127.0.0.1 and on a unix socket in that folder only
#   secrets/   the generated password of the `temporal` database role (mode 600)
#   server/    the server's config (it holds that password too, mode 600), its log and its pid
#   ports.env  the ports chosen at the first start, kept so that clients find the server again
#
#   scripts/temporal-postgres.sh start           install what is missing (scripts/ensure-temporal-server.sh),
#                                                start PostgreSQL and the server, set up the schemas, the
#                                                namespace and the search attributes; prints the address
#   scripts/temporal-postgres.sh restart-server  stop the Temporal server and start it again on the same
#                                                ports, PostgreSQL untouched (what a test restarts)
#   scripts/temporal-postgres.sh stop            stop the server, then PostgreSQL; the data stays
#   scripts/temporal-postgres.sh status          say what runs, and where
#   scripts/temporal-postgres.sh address         print the server's gRPC address (host:port)
#   scripts/temporal-postgres.sh destroy         stop both and delete the state folder
#
# Every command is safe to repeat. Environment: BULK_RESET_TEMPORAL_PG_DIR (the state folder),
# TEMPORAL_NAMESPACE (default "default").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${BULK_RESET_TEMPORAL_PG_DIR:-}"
if [ -z "$state" ]; then
  # Not under .data, which is private (0700) to the account running bulk-reset.
  state="$root/.temporal-postgres"
  # As root, PostgreSQL runs as the postgres user, who must be able to walk down to its folder; a clone
  # it cannot reach (under /root, say) keeps the state under /var/tmp instead, one folder per clone.
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$root"; then
    state="/var/tmp/bulk-reset-temporal-postgres-$(printf '%s' "$root" | sha256sum | cut -c1-12)"
  fi
fi
namespace="${TEMPORAL_NAMESPACE:-default}"
bin="$root/.tools/bin"
pg_data="$state/pg"
server_dir="$state/server"
ports_file="$state/ports.env"
password_file="$state/secrets/pg-password"
server_pid_file="$server_dir/server.pid"
server_log="$server_dir/server.log"
search_attributes=(BulkResetJobId BulkResetPhase) # workflows/types.ts; both Keyword

say() { echo "[temporal-postgres] $*" >&2; }
fail() { echo "[temporal-postgres] error: $*" >&2; exit 1; }

pg_bin() {
  local dir
  dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    fail "PostgreSQL's server programs are not installed (no /usr/lib/postgresql/<major>/bin/initdb); run scripts/ensure-temporal-server.sh"
  fi
  echo "$dir"
}

# PostgreSQL refuses to run as root, so as root it runs as Debian's `postgres` user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || fail "running as root needs the \`postgres\` user (Debian's postgresql package creates it)"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Free when nothing accepts a connection on it (bash's /dev/tcp: no ss or netstat needed).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A block of `count` consecutive free ports, starting at a random base so that parallel runs rarely meet.
# Below 32768: Temporal stores its services' membership ports as PostgreSQL smallint (a server on a
# higher port dies at start with "out of range for type smallint"), and Linux hands out ephemeral ports
# from 32768 up, so none of them can be taken from under us.
free_port_block() {
  local count="$1" base offset
  for _ in $(seq 1 50); do
    base=$((20000 + (RANDOM % 120) * 100))
    for offset in $(seq 0 $((count - 1))); do
      port_free $((base + offset)) || continue 2
    done
    echo "$base"
    return 0
  done
  fail "found no $count free consecutive ports between 20000 and 32000"
}

load_ports() {
  if [ ! -f "$ports_file" ]; then
    local base
    base="$(free_port_block 10)"
    mkdir -p "$state"
    # PostgreSQL first, then the server: frontend gRPC, its HTTP API, and one gRPC and one membership port
    # per service.
    cat >"$ports_file" <<EOF
PG_PORT=$base
FRONTEND_PORT=$((base + 1))
FRONTEND_HTTP_PORT=$((base + 2))
FRONTEND_MEMBERSHIP_PORT=$((base + 3))
HISTORY_PORT=$((base + 4))
HISTORY_MEMBERSHIP_PORT=$((base + 5))
MATCHING_PORT=$((base + 6))
MATCHING_MEMBERSHIP_PORT=$((base + 7))
WORKER_PORT=$((base + 8))
WORKER_MEMBERSHIP_PORT=$((base + 9))
EOF
  fi
  # shellcheck disable=SC1090
  source "$ports_file"
}

address() { echo "127.0.0.1:$FRONTEND_PORT"; }

temporal_cli() {
  local cli
  cli="$(bash "$root/scripts/ensure-temporal.sh")"
  [ -n "$cli" ] || fail "no Temporal CLI: run scripts/ensure-temporal-server.sh"
  "$cli" "$@" --address "$(address)"
}

# --- PostgreSQL --------------------------------------------------------------------------------------

pg_running() { [ -f "$pg_data/postmaster.pid" ] && as_pg "$(pg_bin)/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; }

psql_admin() {
  # The cluster's superuser over the unix socket, authenticated by the operating system user (peer);
  # the SQL comes on standard input.
  as_pg "$(pg_bin)/psql" -h "$pg_data" -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 -qtA
}

init_pg() {
  [ -f "$pg_data/PG_VERSION" ] && return 0
  say "creating a PostgreSQL cluster in $pg_data"
  mkdir -p "$pg_data"
  chmod 700 "$pg_data"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$pg_data"
    # The postgres user must be able to walk down to its data folder.
    local dir="$state"
    while [ "$dir" != "/" ]; do
      runuser -u postgres -- test -x "$dir" ||
        fail "the postgres user cannot enter $dir; pick a state folder it can reach with BULK_RESET_TEMPORAL_PG_DIR"
      dir="$(dirname "$dir")"
    done
  fi
  # Local connections by operating-system identity only, TCP by password (scram): no trust anywhere.
  as_pg "$(pg_bin)/initdb" -D "$pg_data" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 ||
    fail "initdb failed; see $state/initdb.log"
  cat >>"$pg_data/postgresql.conf" <<EOF

# scripts/temporal-postgres.sh: reachable from this machine only.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_data'
max_connections = 200
EOF
}

start_pg() {
  load_ports
  init_pg
  if pg_running; then
    say "PostgreSQL already runs on 127.0.0.1:$PG_PORT"
  else
    port_free "$PG_PORT" || fail "port $PG_PORT (PostgreSQL, from $ports_file) is taken by another program; stop it, or delete $ports_file to pick new ports"
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$(pg_bin)/pg_ctl" -D "$pg_data" -o "-p $PG_PORT" -l "$pg_data/postgresql.log" -w -t 60 start >/dev/null ||
      fail "PostgreSQL did not start; see $pg_data/postgresql.log"
  fi
  setup_role_and_databases
}

setup_role_and_databases() {
  mkdir -p "$state/secrets"
  chmod 700 "$state/secrets"
  if [ ! -s "$password_file" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$password_file")
  fi
  local password
  password="$(cat "$password_file")"
  # The password goes through psql's standard input, never its command line. The role may log in and
  # owns Temporal's two databases; nothing more.
  psql_admin <<SQL
SELECT 'CREATE ROLE temporal LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal')
\gexec
ALTER ROLE temporal WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$password';
SELECT 'CREATE DATABASE temporal OWNER temporal' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal')
\gexec
SELECT 'CREATE DATABASE temporal_visibility OWNER temporal' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal_visibility')
\gexec
SQL
  setup_schema temporal temporal
  setup_schema temporal_visibility visibility
}

# Brings a database to the schema this server release ships: setup-schema leaves a database that is
# already past 0.0 alone, update-schema applies only the newer versions.
setup_schema() {
  local database="$1" schema="$2" schemas
  schemas="$root/.tools/temporal-server/schema/postgresql/v12/$schema/versioned"
  [ -d "$schemas" ] || fail "no schema files at $schemas: run scripts/ensure-temporal-server.sh"
  local sql_tool=("$bin/temporal-sql-tool" --plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u temporal --db "$database")
  SQL_PASSWORD="$(cat "$password_file")" "${sql_tool[@]}" setup-schema -v 0.0 >>"$state/schema.log" 2>&1 ||
    fail "setting up the schema of database $database failed; see $state/schema.log"
  SQL_PASSWORD="$(cat "$password_file")" "${sql_tool[@]}" update-schema -d "$schemas" >>"$state/schema.log" 2>&1 ||
    fail "updating the schema of database $database failed; see $state/schema.log"
}

stop_pg() {
  if [ -f "$pg_data/PG_VERSION" ] && pg_running; then
    say "stopping PostgreSQL"
    as_pg "$(pg_bin)/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null || fail "PostgreSQL did not stop; see $pg_data/postgresql.log"
  fi
}

# --- Temporal server ---------------------------------------------------------------------------------

server_pid() {
  [ -f "$server_pid_file" ] || return 1
  local pid
  pid="$(cat "$server_pid_file")"
  # Only our own server process: a pid file left by a crash may name an unrelated process by now.
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--root $server_dir " || return 1
  echo "$pid"
}

write_server_config() {
  mkdir -p "$server_dir/config"
  chmod 700 "$server_dir"
  local password
  password="$(cat "$password_file")"
  (umask 077 && cat >"$server_dir/config/bulk-reset.yaml" <<EOF
# Written by scripts/temporal-postgres.sh at every server start; edits are lost.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  # Fixed when the cluster is first created. Small: one machine, a test load.
  numHistoryShards: 4
  datastores:
    postgres-default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:$PG_PORT"
        connectProtocol: tcp
        user: temporal
        password: "$password"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:$PG_PORT"
        connectProtocol: tcp
        user: temporal
        password: "$password"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:
    rpc:
      grpcPort: $FRONTEND_PORT
      httpPort: $FRONTEND_HTTP_PORT
      membershipPort: $FRONTEND_MEMBERSHIP_PORT
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: $HISTORY_PORT
      membershipPort: $HISTORY_MEMBERSHIP_PORT
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: $MATCHING_PORT
      membershipPort: $MATCHING_MEMBERSHIP_PORT
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: $WORKER_PORT
      membershipPort: $WORKER_MEMBERSHIP_PORT
      bindOnLocalHost: true
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$FRONTEND_PORT"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "$server_dir/config/dynamicconfig.yaml"
  pollInterval: 10s
EOF
  )
  cat >"$server_dir/config/dynamicconfig.yaml" <<'EOF'
# Written by scripts/temporal-postgres.sh. Server defaults, but for:
# Job ids may be 128 characters and each user's workflow id is `<job id>/user-<24 hex digits>`; the
# same pin as temporal-docker/dynamicconfig/bulk-reset.yaml.
limit.maxIDLength:
  - value: 1000
    constraints: {}
# Search attributes registered by this script are usable at once, not after the next cache refresh.
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
    constraints: {}
EOF
}

start_server() {
  local pid
  if pid="$(server_pid)"; then
    say "the Temporal server already runs (pid $pid) on $(address)"
  else
    local port
    for port in "$FRONTEND_PORT" "$FRONTEND_HTTP_PORT" "$FRONTEND_MEMBERSHIP_PORT" "$HISTORY_PORT" \
      "$HISTORY_MEMBERSHIP_PORT" "$MATCHING_PORT" "$MATCHING_MEMBERSHIP_PORT" "$WORKER_PORT" "$WORKER_MEMBERSHIP_PORT"; do
      port_free "$port" || fail "port $port (Temporal server, from $ports_file) is taken by another program; stop it, or run \`$0 stop\`, delete $ports_file and start again"
    done
    write_server_config
    say "starting the Temporal server on $(address) (log: $server_log)"
    # Its own session, so that it outlives this script and a Ctrl-C in the shell that started it.
    setsid "$bin/temporal-server" --root "$server_dir" --config config --env bulk-reset --allow-no-auth start \
      >>"$server_log" 2>&1 </dev/null &
    echo $! >"$server_pid_file"
  fi
  wait_for_server
}

wait_for_server() {
  local started=$SECONDS
  until temporal_cli operator cluster health 2>/dev/null | grep -q SERVING; do
    server_pid >/dev/null || fail "the Temporal server exited while starting; the end of $server_log:
$(tail -n 20 "$server_log")"
    [ $((SECONDS - started)) -lt 180 ] || fail "the Temporal server is not serving after 180 s; see $server_log"
    sleep 1
  done
  say "the Temporal server serves on $(address) ($((SECONDS - started)) s)"
}

stop_server() {
  local pid
  pid="$(server_pid)" || { rm -f "$server_pid_file"; return 0; }
  say "stopping the Temporal server (pid $pid)"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge 60 ]; then
      say "the Temporal server did not stop within 30 s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  rm -f "$server_pid_file"
}

# The namespace and the search attributes a job needs; existing ones are left as they are.
setup_namespace() {
  local started=$SECONDS
  if ! temporal_cli operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    temporal_cli operator namespace create --namespace "$namespace" --retention 72h \
      --description "bulk-reset on PostgreSQL (scripts/temporal-postgres.sh)" >/dev/null ||
      fail "could not create the namespace $namespace; see $server_log"
    say "namespace $namespace created"
  fi
  local attribute listed
  for attribute in "${search_attributes[@]}"; do
    listed="$(temporal_cli operator search-attribute list --namespace "$namespace" 2>/dev/null || true)"
    if ! grep -qw "$attribute" <<<"$listed"; then
      # A namespace just created reaches every service's cache within seconds; until then this is refused.
      until temporal_cli operator search-attribute create --namespace "$namespace" --name "$attribute" --type Keyword >/dev/null 2>&1 ||
        temporal_cli operator search-attribute list --namespace "$namespace" 2>/dev/null | grep -qw "$attribute"; do
        [ $((SECONDS - started)) -lt 120 ] || fail "could not register the search attribute $attribute in namespace $namespace; see $server_log"
        sleep 1
      done
      say "search attribute $attribute registered"
    fi
  done
  # Ready when a query on the search attributes is accepted: the namespace and its attributes are known.
  until temporal_cli workflow list --namespace "$namespace" --limit 1 \
    --query "BulkResetJobId = 'readiness-check' AND BulkResetPhase = 'readiness-check'" >/dev/null 2>&1; do
    [ $((SECONDS - started)) -lt 120 ] || fail "namespace $namespace does not accept queries on ${search_attributes[*]}; see $server_log"
    sleep 1
  done
}

status() {
  load_ports
  local pid
  if [ -f "$pg_data/PG_VERSION" ] && pg_running; then echo "PostgreSQL: running on 127.0.0.1:$PG_PORT ($pg_data)"; else echo "PostgreSQL: stopped"; fi
  if pid="$(server_pid)"; then echo "Temporal server: running, pid $pid, on $(address) (log $server_log)"; else echo "Temporal server: stopped"; fi
}

case "${1:-}" in
  start)
    bash "$root/scripts/ensure-temporal-server.sh" >/dev/null
    start_pg
    start_server
    setup_namespace
    address
    ;;
  restart-server)
    load_ports
    pg_running || fail "PostgreSQL is not running: use \`$0 start\`"
    stop_server
    start_server
    address
    ;;
  stop)
    load_ports
    stop_server
    stop_pg
    ;;
  status) status ;;
  address)
    load_ports
    address
    ;;
  destroy)
    load_ports
    stop_server
    stop_pg
    rm -rf "$state"
    say "deleted $state"
    ;;
  *)
    echo "usage: $0 start | restart-server | stop | status | address | destroy" >&2
    exit 2
    ;;
esac
