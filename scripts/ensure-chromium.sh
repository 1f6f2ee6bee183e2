#!/usr/bin/env bash
# Installs Debian's Chromium when it is missing: the tests that look where a person would look (the
# Temporal Web UI, the HTML report) drive it headless through playwright-core. Safe to run again.
# Prints the browser's path. BULK_RESET_CHROMIUM names another Chromium to use instead.
set -euo pipefail
step() { echo "[ensure-chromium] $*" >&2; }
fail() { echo "[ensure-chromium] error: $*" >&2; exit 1; }

browser="${BULK_RESET_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$browser" ]; then
  [ -z "${BULK_RESET_CHROMIUM:-}" ] || fail "BULK_RESET_CHROMIUM is $browser, which is not an executable"
  if [ "$(id -u)" -ne 0 ]; then
    fail "Chromium is not installed and installing it needs root: run \`sudo apt-get install -y chromium\`, then this script again"
  fi
  command -v apt-get >/dev/null 2>&1 || fail "Chromium is not installed and there is no apt-get here: install Chromium and set BULK_RESET_CHROMIUM to its path"
  step "installing Chromium from Debian's packages..."
  started=$SECONDS
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2; } ||
    fail "apt-get could not install chromium; see its output above"
  step "Chromium installed in $((SECONDS - started)) s"
fi
echo "$browser"
