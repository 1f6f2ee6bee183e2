#!/usr/bin/env bash
# Installs what scripts/temporal-postgres.sh runs, when it is missing, and says how long each step took:
#   - PostgreSQL from Debian's packages (`apt-get install postgresql`, as root only),
#   - the Temporal server and its SQL schema tool, built with `go install` into .tools/bin as
#     temporal-server and temporal-sql-tool (the release the project's Temporal CLI is built on),
#   - the Temporal CLI itself (scripts/ensure-temporal.sh), for health checks and the namespace.
# Safe to run again: what is there already is left alone. Prints the .tools/bin folder.
# The schema files go to .tools/temporal-server/schema, so running the server needs no Go.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
server_version="v1.29.1" # the server release the Temporal CLI v1.5.1 (scripts/ensure-temporal.sh) is built on
bin="$root/.tools/bin"
share="$root/.tools/temporal-server" # the schema files and the VERSION built

step() { echo "[ensure-temporal-server] $*" >&2; }
fail() { echo "[ensure-temporal-server] error: $*" >&2; exit 1; }
source "$root/scripts/apt-install.sh"

# PostgreSQL: Debian puts its server programs in /usr/lib/postgresql/<major>/bin.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  apt_install postgresql PostgreSQL "install PostgreSQL 12 or later so that /usr/lib/postgresql/<major>/bin/initdb exists"
fi

# The Temporal server and temporal-sql-tool, from the Go module proxy, with the PostgreSQL schema files
# of the same release (from the module's source, which go install leaves in the Go module cache). Both
# programs come from one module at one version, so one `go install` builds them on shared dependencies.
if [ "$(cat "$share/VERSION" 2>/dev/null)" != "$server_version" ] || [ ! -x "$bin/temporal-server" ] ||
  [ ! -x "$bin/temporal-sql-tool" ] || [ ! -d "$share/schema/postgresql/v12" ]; then
  go_bin="$(command -v go || true)"
  if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go; fi
  [ -n "$go_bin" ] ||
    fail "Go is needed to build the Temporal server (go install go.temporal.io/server/cmd/server@$server_version); install Go 1.23 or later"
  step "building the Temporal server $server_version and its SQL tool with go install (many minutes the first time)..."
  started=$SECONDS
  build_dir="$(mktemp -d)"
  trap 'rm -rf "$build_dir"' EXIT
  GOBIN="$build_dir" "$go_bin" install \
    "go.temporal.io/server/cmd/server@$server_version" \
    "go.temporal.io/server/cmd/tools/sql@$server_version" >&2 ||
    fail "go install of the Temporal server $server_version failed; see the Go output above"
  source_dir="$("$go_bin" mod download -json "go.temporal.io/server@$server_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$source_dir/schema/postgresql/v12" ] ||
    fail "the Temporal server's schema files are not in the Go module cache (looked in '$source_dir/schema/postgresql/v12')"
  mkdir -p "$bin" "$share/schema/postgresql"
  rm -rf "$share/schema/postgresql/v12"
  cp -R "$source_dir/schema/postgresql/v12" "$share/schema/postgresql/v12"
  chmod -R u+w "$share/schema"
  mv "$build_dir/server" "$bin/temporal-server"
  mv "$build_dir/sql" "$bin/temporal-sql-tool"
  echo "$server_version" >"$share/VERSION"
  step "Temporal server and temporal-sql-tool $server_version built in $((SECONDS - started)) s"
fi

cli="$(bash "$root/scripts/ensure-temporal.sh")"
[ -n "$cli" ] || fail "no Temporal CLI: scripts/ensure-temporal.sh could not install one"
echo "$bin"
