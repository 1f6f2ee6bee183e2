#!/usr/bin/env bash
# Makes sure the real `temporal` CLI (which runs the dev server) is available, and prints its path.
# Order: $TEMPORAL_CLI_PATH, `temporal` on PATH, the project's .tools/bin, then `go install` into
# .tools/bin from the Go module proxy. If none works, the tests fall back to the Temporal SDK's own
# download of the CLI, which needs internet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="v1.5.1" # the newest release `go install` can build (later ones use a replace directive)

if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then
  if [ -x "$TEMPORAL_CLI_PATH" ]; then echo "$TEMPORAL_CLI_PATH"; exit 0; fi
  echo "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file" >&2
  exit 1
fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi
if [ -x "$root/.tools/bin/temporal" ]; then echo "$root/.tools/bin/temporal"; exit 0; fi

if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
  go_bin="$(command -v go || echo /usr/local/go/bin/go)"
  echo "installing the Temporal CLI $version with go install (a few minutes, once)..." >&2
  mkdir -p "$root/.tools/bin"
  if GOBIN="$root/.tools/bin" "$go_bin" install "github.com/temporalio/cli/cmd/temporal@$version" >&2; then
    echo "$root/.tools/bin/temporal"
    exit 0
  fi
  echo "go install of the Temporal CLI failed" >&2
fi
echo "no Temporal CLI found and Go is not available: the tests will let the Temporal SDK download one (needs internet)" >&2
exit 0
