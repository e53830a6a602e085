#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs the suites three times:
#   1. g++, warning_level=3, werror: unit, integration, interop (conformance, python, node,
#      Chromium, wss://, legacy peers)
#   2. clang, werror, ASan + UBSan: unit, integration, and each libFuzzer target for ~5 s
#   3. clang, werror, TSan: the multi-threaded tests (threads, echo)
# Ends with one line "N passed, M failed" (meson tests; a failed build counts as failed).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash test/install_deps.sh --tests || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

# node ws for the interop suite, pinned by the lock file
if command -v npm >/dev/null 2>&1; then
  (cd test/interop && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) ||
    echo "note: npm ci failed; the node interop test will be skipped"
fi

passed=0 failed=0 skipped=0
run_suite() {  # name, build dir, meson test args..., -- setup args...
  local name=$1 dir=$2; shift 2
  local test_args=() setup_args=()
  while (($#)) && [[ $1 != -- ]]; do test_args+=("$1"); shift; done
  (($#)) && shift
  setup_args=("$@")
  echo "=== $name"
  if [[ ! -f $dir/build.ninja ]]; then
    if ! meson setup "$dir" "${setup_args[@]}" > "$dir.setup.log" 2>&1; then
      cat "$dir.setup.log"; echo "setup of $name FAILED"; failed=$((failed + 1)); return
    fi
  fi
  # shellcheck disable=SC2086  # TARGETS is a word list on purpose
  if ! meson compile -C "$dir" ${TARGETS:-} > "$dir.build.log" 2>&1; then
    tail -n 60 "$dir.build.log"; echo "build of $name FAILED"; failed=$((failed + 1)); return
  fi
  meson test -C "$dir" --print-errorlogs "${test_args[@]}" 2>&1 | tee "$dir.test.log" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):'
  local ok fail skip tout xfail xpass
  ok=$(awk '/^Ok:/ {print $2}' "$dir.test.log"); fail=$(awk '/^Fail:/ {print $2}' "$dir.test.log")
  skip=$(awk '/^Skipped:/ {print $2}' "$dir.test.log"); tout=$(awk '/^Timeout:/ {print $2}' "$dir.test.log")
  xfail=$(awk '/^Expected Fail:/ {print $3}' "$dir.test.log"); xpass=$(awk '/^Unexpected Pass:/ {print $3}' "$dir.test.log")
  if [[ -z $ok ]]; then echo "$name: no test summary"; failed=$((failed + 1)); return; fi
  passed=$((passed + ok + ${xfail:-0}))
  failed=$((failed + ${fail:-0} + ${tout:-0} + ${xpass:-0}))
  skipped=$((skipped + ${skip:-0}))
}

run_suite "g++ werror: unit, integration, interop" build-test --no-suite slow -- \
  -Dwerror=true -Dwarning_level=3 --buildtype=debugoptimized
# (--timeout-multiplier: an unoptimised sanitizer build runs the exhaustive split-point tests
# several times slower; test_frame alone takes about 110 s of its 120 there)
CC=clang CXX=clang++ run_suite "clang werror ASan+UBSan: unit, integration, fuzz" build-asan \
  --suite unit --suite integration --suite fuzz --timeout-multiplier 3 -- \
  -Dwerror=true -Dwarning_level=3 --buildtype=debug -Db_sanitize=address,undefined \
  -Db_lundef=false -Ddefault_library=static
# (only the threaded tests: test_frame and test_alloc replace operator new, as TSan does)
CC=clang CXX=clang++ TSAN_OPTIONS="halt_on_error=1" TARGETS="test/test_threads test/test_echo test/test_events" \
  run_suite "clang werror TSan: multi-threaded tests" build-tsan \
  --no-rebuild threads echo events -- \
  -Dwerror=true -Dwarning_level=3 --buildtype=debug -Db_sanitize=thread \
  -Db_lundef=false -Ddefault_library=static

echo
if ((skipped)); then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
((failed == 0))
