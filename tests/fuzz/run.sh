#!/bin/sh
# Runs the libFuzzer targets of tests/fuzz, each for SECONDS (default 60), on
# a scratch copy of its seed corpus and regressions (the committed corpus
# never grows). Builds build-fuzz (clang, ASan+UBSan, -Dfuzz=enabled) first if
# it is missing. Exits non-zero if any target crashed, leaked, timed out or ran
# out of memory, and prints where each reproducer is.
#
# usage: tests/fuzz/run.sh [SECONDS] [TARGET...]     TARGET: eie onnx idx config infer rest
# env:   BUILD (default build-fuzz), WORK (default $BUILD/fuzz-work),
#        FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2 -workers=2")
set -u
cd "$(dirname "$0")/../.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-eie onnx idx config infer rest}
build=${BUILD:-build-fuzz}
work=${WORK:-$build/fuzz-work}

# Inputs are at most 64 KiB, so one allocation over 256 MiB means a size
# field was believed before the data behind it was seen: a bug (libFuzzer
# reports it as out-of-memory with the reproducer).
malloc_limit=256

# Longest input worth trying per target: a few small models, a config file
# (lines may be up to 4 KiB), a request with a batch of wide rows.
max_len() {
  case $1 in
    eie) echo 32768 ;;
    onnx) echo 65536 ;;
    idx) echo 16384 ;;
    config) echo 16384 ;;
    infer) echo 16384 ;;
    rest) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

if [ ! -f "$build/build.ninja" ]; then
  if ! CC=clang meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dfuzz=enabled >"$build.setup.log" 2>&1; then
    tail -20 "$build.setup.log"
    echo "fuzz: could not configure $build (log $build.setup.log)" >&2
    exit 2
  fi
fi
for t in $targets; do
  # A target that does not build is a failure, shown, never a silent exit.
  if ! ninja -C "$build" "tests/fuzz/fuzz_$t" >"$build/fuzz-build.log" 2>&1; then
    grep -E 'error|FAILED' "$build/fuzz-build.log" | head -10
    echo "fuzz: fuzz_$t does not build (log $build/fuzz-build.log)" >&2
    exit 2
  fi
done

# UBSan must stop the run, or libFuzzer never sees the report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

status=0
for t in $targets; do
  dir=$work/$t
  rm -rf "$dir/corpus"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  for src in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do
    [ -d "$src" ] && find "$src" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$dir/corpus/" \;
  done
  touch "$dir/started"
  echo "== fuzz_$t: ${seconds}s, max_len $(max_len "$t"), log $dir/log"
  # shellcheck disable=SC2086
  "$build/tests/fuzz/fuzz_$t" "$dir/corpus" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=$malloc_limit -timeout=10 -max_len="$(max_len "$t")" \
    -artifact_prefix="$dir/artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} \
    >"$dir/log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  echo "   exit $rc, ${runs:-?} runs, ${speed:-?} exec/s, corpus $(ls "$dir/corpus" | wc -l) files"
  new=$(find "$dir/artifacts" -type f -newer "$dir/started")
  if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
    status=1
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant broken)' "$dir/log" | head -5 | sed 's/^/   /'
    for f in $new; do
      echo "   reproducer: $f"
    done
    echo "   replay:     $build/tests/fuzz/fuzz_$t REPRODUCER"
    echo "   once fixed: cp REPRODUCER tests/fuzz/regressions/$t/<what-it-was>"
  fi
done
exit $status
