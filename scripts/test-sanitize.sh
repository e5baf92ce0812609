#!/usr/bin/env bash
# Builds the library and the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer in
# ./build-asan (-O1: instrumented code stays fast enough to test; no ccache needed to fit CI) and
# runs them. Any finding fails: UBSan halts on the first error, ASan on every error, LeakSanitizer
# checks at exit (LibTorch, ITK and CGAL need no suppressions: the tests end leak-free).
# scripts/test.sh runs this after the normal suite.
#   scripts/test-sanitize.sh [GTEST_FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
build=$root/build-asan
mkdir -p "$build"
start=$(date +%s)
cmake -S . -B "$build" -DDDCSR_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" >"$build/build.log" 2>&1 || { cat "$build/build.log"; exit 1; }
# Only the library and its unit tests: the command-line front end adds build time, not coverage
# of the code that parses and computes.
cmake --build "$build" -j"$jobs" --target ddcsr_tests >>"$build/build.log" 2>&1 ||
  { grep -E "error|Error" -A3 "$build/build.log" | head -60; exit 1; }
built=$(date +%s)
echo "sanitizer build: ok ($((built - start)) s)"

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd "$build/tests"
./ddcsr_tests --gtest_brief=1 --gtest_filter="${1:-*}"
echo "sanitizer tests: ok ($(($(date +%s) - built)) s)"
