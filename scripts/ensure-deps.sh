#!/usr/bin/env bash
# Source after ensure-node.sh: installs the npm packages at the locked versions (when the lock file is
# newer than the installed tree) and builds the TypeScript when a source is newer than the build.
#
# `npm install`, not `npm ci`: the registry mirror these machines use leaves out the other platforms'
# optional binaries (@swc/core-darwin-arm64 and the like), so the lock file cannot list them and
# `npm ci` refuses it as out of sync. `npm install` keeps the locked versions and skips those.
_bulk_reset_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_bulk_reset_root/node_modules/.package-lock.json" ] ||
  [ "$_bulk_reset_root/package-lock.json" -nt "$_bulk_reset_root/node_modules/.package-lock.json" ]; then
  echo "installing npm packages..." >&2
  (cd "$_bulk_reset_root" && npm install --no-audit --no-fund >&2) || { return 1 2>/dev/null || exit 1; }
fi
if [ ! -f "$_bulk_reset_root/dist/client/cli.js" ] ||
  [ -n "$(cd "$_bulk_reset_root" && find workflows activities graph jobs secrets temporal worker client simulator test bench tsconfig.json package-lock.json \
    -newer dist/client/cli.js \( -name '*.ts' -o -name '*.json' \) -print -quit)" ]; then
  echo "building (tsc)..." >&2
  (cd "$_bulk_reset_root" && npx --no-install tsc -p tsconfig.json >&2) || { return 1 2>/dev/null || exit 1; }
fi
