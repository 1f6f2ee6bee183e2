#!/usr/bin/env bash
# Builds scripts/compose-config (compose-go, the library `docker compose config` is built on) into the
# project's git-ignored .tools/bin when it is missing or older than its source, and prints its path.
# test/compose.test.ts uses it to check temporal-docker/ on machines without Docker. Needs Go; the
# modules come from the Go module proxy (about 3 minutes the first time, then cached).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/scripts/compose-config"
bin="$root/.tools/bin/compose-config"

if [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f -print -quit)" ]; then
  echo "$bin"
  exit 0
fi
go_bin="$(command -v go || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go; fi
if [ -z "$go_bin" ]; then
  echo "Go is needed to build scripts/compose-config (the Compose file check); install Go 1.24 or later" >&2
  exit 1
fi
echo "building compose-config (compose-go) into .tools/bin (once)..." >&2
mkdir -p "$root/.tools/bin"
(cd "$src" && GOFLAGS="-mod=readonly -buildvcs=false" "$go_bin" build -o "$bin" .) >&2
echo "$bin"
