#!/usr/bin/env bash
# Source after ensure-node.sh: installs the npm packages exactly as locked (when the lock file is newer
# than the installed tree) and builds the TypeScript when a source is newer than the build.
_bulk_reset_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_bulk_reset_root/node_modules/.package-lock.json" ] ||
  [ "$_bulk_reset_root/package-lock.json" -nt "$_bulk_reset_root/node_modules/.package-lock.json" ]; then
  echo "installing npm packages (npm ci)..." >&2
  (cd "$_bulk_reset_root" && npm ci --no-audit --no-fund >&2) || { return 1 2>/dev/null || exit 1; }
fi
if [ ! -f "$_bulk_reset_root/dist/client/cli.js" ] ||
  [ -n "$(cd "$_bulk_reset_root" && find workflows activities worker client simulator test tsconfig.json package-lock.json \
    -newer dist/client/cli.js \( -name '*.ts' -o -name '*.json' \) -print -quit)" ]; then
  echo "building (tsc)..." >&2
  (cd "$_bulk_reset_root" && npx --no-install tsc -p tsconfig.json >&2) || { return 1 2>/dev/null || exit 1; }
fi
