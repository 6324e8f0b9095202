#!/bin/sh
# Builds eie twice (warnings are errors; then with ASan+UBSan, LeakSanitizer
# on) and runs the whole test suite in each build: criterion unit tests, the
# end-to-end tests over loopback, the soak, deployment checks, fuzz replays.
# Then the engine's concurrency tests under ThreadSanitizer and each fuzz
# target for a bounded time. Prints one closing line "N passed, N failed".
# Usage: tests/run-all.sh [BUILD_PREFIX]
set -eu
cd "$(dirname "$0")/.."
prefix=${1:-build-test}
jobs=$(nproc 2>/dev/null || echo 2)

setup() {
  dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" --werror "$@" >/dev/null
  else
    meson setup "$dir" --werror "$@" >/dev/null
  fi
}

passed=0
failed=0
status=0
run_suite() {
  dir=$1
  echo "== $dir: build"
  ninja -C "$dir" -j "$jobs"
  echo "== $dir: test"
  if ! meson test -C "$dir" --print-errorlogs --num-processes "$jobs"; then
    status=1
  fi
  # meson writes a JSON line per test; count verdicts from it
  ok=$(grep -c '"result": "OK"' "$dir/meson-logs/testlog.json" || true)
  bad=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' \
    "$dir/meson-logs/testlog.json" || true)
  passed=$((passed + ok))
  failed=$((failed + bad))
}

setup "$prefix" -Dbuildtype=debugoptimized
run_suite "$prefix"

# ASan+UBSan: any sanitizer report fails the test that triggered it.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
setup "$prefix-asan" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
run_suite "$prefix-asan"

# ThreadSanitizer on the engine's concurrency tests (gRPC is not instrumented).
echo "== ThreadSanitizer"
if ./tests/tsan.sh "$prefix-tsan"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  status=1
fi

# Each libFuzzer target for a bounded time (the long run is in tests/fuzz/README.md).
if command -v clang >/dev/null 2>&1; then
  echo "== fuzz (${EIE_FUZZ_SECONDS:-30} s a target)"
  if BUILD="$prefix-fuzz" ./tests/fuzz/run.sh "${EIE_FUZZ_SECONDS:-30}"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    status=1
  fi
fi

echo "$passed passed, $failed failed"
exit $status
