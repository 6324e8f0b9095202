#!/bin/sh
# Installs what the onnxruntime peer benchmark (tests/bench/ort-peer.mjs)
# needs beyond deploy/install-deps.sh: Node.js and npm from Debian 12
# packages where no `node` or `npm` is on the PATH (install-deps.sh
# --node), then onnxruntime-node from the npm registry into
# BUILD/bench-npm (BUILD: the first argument, default build). Not part of
# the build or the tests: a benchmark run by hand. --ignore-scripts: the package's install script fetches GPU
# binaries from elsewhere; its CPU library ships in the package itself.
# Idempotent: safe to run again; fails loudly on any error.
set -eu

ORT_VERSION=1.31.1
BUILD=${1:-build}
PREFIX="$BUILD/bench-npm"

"$(dirname "$0")/install-deps.sh" --node

have=$(node -e "try { console.log(require(require('path').resolve(process.argv[1],
  'node_modules/onnxruntime-node/package.json')).version) } catch (e) {}" "$PREFIX" 2>/dev/null || true)
if [ "$have" = "$ORT_VERSION" ]; then
  echo "install-bench-deps.sh: onnxruntime-node $ORT_VERSION present in $PREFIX"
  exit 0
fi

mkdir -p "$PREFIX"
echo "install-bench-deps.sh: installing onnxruntime-node $ORT_VERSION into $PREFIX"
npm install --prefix "$PREFIX" --ignore-scripts --no-audit --no-fund --no-save \
  "onnxruntime-node@$ORT_VERSION"
echo "install-bench-deps.sh: done"
