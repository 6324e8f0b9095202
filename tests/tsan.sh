#!/bin/sh
# Builds build-tsan (-Db_sanitize=thread) and runs the engine's concurrency
# tests under ThreadSanitizer: suite "tsan", the engine tests that run
# without criterion (criterion's sandbox cannot start under TSan,
# Snaipe/Criterion#274): engine-cpu-stress (threads on one net, overlapping
# async submits, 1-7 PEs) and fuzz-replay-eie (every seed model prepared and
# run on a 2-PE engine). gRPC is left out: libgrpc is not TSan-instrumented
# (shared/GRPC_NOTES.md). Any report fails the run.
# usage: tests/tsan.sh [BUILD_DIR]      (CC=clang works as well as gcc)
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-tsan}
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false \
    -Dfuzz=disabled >/dev/null
fi
ninja -C "$dir" tests/engine/cpu/stress-threads tests/engine/cpu/stress-graph tests/fuzz/replay_eie
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:second_deadlock_stack=1}"
meson test -C "$dir" --no-rebuild --suite tsan --print-errorlogs --num-processes 1 \
  --timeout-multiplier 5 --repeat "${TSAN_REPEAT:-3}"
