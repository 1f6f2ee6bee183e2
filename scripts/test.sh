#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: Node 22+, the npm packages, the Temporal CLI, the
# Compose file checker (scripts/compose-config, built with Go), Debian's Chromium, then
# `npm test` (build, lint, Jest with a real Temporal dev server, worker and Graph simulator).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/ensure-node.sh
source scripts/ensure-deps.sh
bash scripts/ensure-temporal.sh >/dev/null
bash scripts/ensure-compose-config.sh >/dev/null
# Debian's Chromium, for the tests that look at the Web UI and the HTML report in a real browser.
bash scripts/ensure-chromium.sh >/dev/null
# BULK_RESET_TEST_POSTGRES=1 adds test/postgres.e2e.test.ts, on a Temporal server built here first.
if [ "${BULK_RESET_TEST_POSTGRES:-}" = 1 ]; then bash scripts/ensure-temporal-server.sh >/dev/null; fi
npm test "$@"
