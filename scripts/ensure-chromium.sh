#!/usr/bin/env bash
# Installs Debian's Chromium when it is missing: the tests that look where a person would look (the
# Temporal Web UI, the HTML report) drive it headless through playwright-core. Safe to run again.
# Prints the browser's path. BULK_RESET_CHROMIUM names another Chromium to use instead.
set -euo pipefail
step() { echo "[ensure-chromium] $*" >&2; }
fail() { echo "[ensure-chromium] error: $*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

browser="${BULK_RESET_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$browser" ]; then
  [ -z "${BULK_RESET_CHROMIUM:-}" ] || fail "BULK_RESET_CHROMIUM is $browser, which is not an executable"
  apt_install chromium Chromium "install Chromium and set BULK_RESET_CHROMIUM to its path"
fi
echo "$browser"
