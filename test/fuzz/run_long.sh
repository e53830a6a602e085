#!/usr/bin/env bash
# A long fuzzing session for one libFuzzer target, measured in CPU time rather than wall
# time (on a shared machine the two differ a lot): runs the target at nice 19 until it has
# used CPU_SECONDS of processor time, then stops it and prints its last status line
# (executions, coverage, features, corpus).
#
#   test/fuzz/run_long.sh BUILD_DIR TARGET [CPU_SECONDS=1800] [WORK_DIR=/tmp/wscoro-fuzz]
#   e.g. test/fuzz/run_long.sh build-fuzz frame_server 1800
#
# BUILD_DIR is a clang build with the fuzzing feature (see test/fuzz/meson.build). New
# inputs go to WORK_DIR/corpus/TARGET (kept between runs, so sessions add up), crashes to
# WORK_DIR/artifacts/; the repository's seed corpus is only read. Exit status 1 if the
# target found a crash, leak or sanitizer error.
set -uo pipefail
build=${1:?build dir}; target=${2:?target}; cpu_limit=${3:-1800}; work=${4:-/tmp/wscoro-fuzz}
src=$(cd "$(dirname "$0")" && pwd)
exe=$build/test/fuzz/fuzz_$target
[[ -x $exe ]] || { echo "no $exe (build it: ninja -C $build test/fuzz/fuzz_$target)" >&2; exit 2; }
declare -A dicts=([http_request]=http.dict [negotiate]=http.dict [frame_server]=frame.dict
  [frame_client]=frame.dict [codec]=codec.dict [utf8]=utf8.dict [proxy_protocol]=proxy.dict)
mkdir -p "$work/corpus/$target" "$work/artifacts" "$work/logs"
args=(-max_len=4096 -timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/$target-"
  "$work/corpus/$target" "$src/corpus/$target")
[[ -n ${dicts[$target]:-} ]] && args+=(-dict="$src/${dicts[$target]}")
log=$work/logs/$target.log
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
nice -n 19 "$exe" "${args[@]}" > "$log" 2>&1 &
pid=$!
tck=$(getconf CLK_TCK)
cpu=0
while kill -0 "$pid" 2>/dev/null; do
  sleep 5
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || break
  cpu=$(awk -v t="$tck" '{print int(($14 + $15) / t)}' <<< "$stat")
  ((cpu >= cpu_limit)) && kill -INT "$pid"
done
wait "$pid"; rc=$?
echo "fuzz_$target: ${cpu} CPU-s; last status: $(grep -E '^#[0-9]+' "$log" | tail -n 1)"
# libFuzzer exits 0 on a normal end and (with -INT) 72 when interrupted; anything else is a
# finding (its artifact is in $work/artifacts).
if ((rc != 0 && rc != 72 && rc != 130)); then
  echo "fuzz_$target: FINDING (exit $rc), see $log" >&2
  exit 1
fi
