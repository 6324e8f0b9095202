#!/bin/sh
# Installs the dependencies of eie from Debian 12 packages.
#   install-deps.sh          build and test (CI: .ci/run)
#   install-deps.sh --build  only what `meson setup -Dtests=disabled
#                            -Dbench=disabled && ninja` needs (the image's
#                            build stage)
#   install-deps.sh --node   Node.js and npm, where no node or npm is on
#                            the PATH (install-bench-deps.sh: the
#                            onnxruntime peer benchmark)
# Idempotent: safe to run again; fails loudly on any error. Run as root or
# with sudo available. The Dockerfile and CI use this same script.
set -eu

# What the build itself needs: compiler, meson, python3 (proto/embed.py),
# the libraries meson.build declares, protoc and protoc-c, and the .proto
# files it compiles (grpc-proto: health and reflection; libonnx-dev:
# onnx.proto).
BUILD_PACKAGES="
  build-essential pkg-config meson ninja-build python3
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler grpc-proto
  libuv1-dev libssl-dev zlib1g-dev libmicrohttpd-dev libgnutls28-dev libjansson-dev
  libonnx-dev
"

# Tests, sanitizers, fuzzing and benchmarks on top of the build.
TEST_PACKAGES="
  openssl curl
  libcriterion-dev
  clang libclang-rt-14-dev
  python3-grpcio python3-protobuf python3-yaml python3-onnx python3-numpy
  libopenblas-dev
  libonnx-testdata dataset-fashion-mnist
"

# tests/deploy renders the kustomizations with kubectl. Debian's
# kubernetes-client (1.20) is the oldest kubectl they are written for; an
# existing kubectl (any packaging, e.g. a newer one owning /usr/bin/kubectl)
# is kept, as installing over it would conflict.
if ! command -v kubectl >/dev/null 2>&1; then
  TEST_PACKAGES="$TEST_PACKAGES kubernetes-client"
fi

case "${1:-}" in
  "") PACKAGES="$BUILD_PACKAGES $TEST_PACKAGES" ;;
  --build) PACKAGES="$BUILD_PACKAGES" ;;
  --node)
    PACKAGES=""
    # a node or npm from elsewhere (e.g. nodesource) is kept
    command -v node >/dev/null 2>&1 || PACKAGES="nodejs"
    command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"
    ;;
  *)
    echo "install-deps.sh: unknown argument '$1'; expected nothing, --build or --node" >&2
    exit 2
    ;;
esac

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-deps.sh: run as root or install sudo" >&2
  exit 1
fi

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps.sh: all dependencies present"
  exit 0
fi

echo "install-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $missing
echo "install-deps.sh: done"
