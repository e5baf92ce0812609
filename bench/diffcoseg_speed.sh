#!/bin/sh
# DiffCoSeg at full size on real cortical geometry: fsaverage5's white and pial surfaces turned
# into SDFs on a 1 mm grid, both hemispheres reconstructed together at the default 150k vertices,
# timed, measured against the truth (ASSD/HD90, 100k samples per direction) and checked (SIF,
# white outside pial, Euler). Prints a table; peak memory from /usr/bin/time (includes building
# the SDFs).
# Usage: bench/diffcoseg_speed.sh [build-dir] [threads]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
threads=${2:-2}
export OMP_NUM_THREADS=$threads
export DDCSR_SHARED_DATA=${DDCSR_SHARED_DATA:-$here/../shared/data}
cmake --build "$build" --target ddcsr_tests >/dev/null
log=$(mktemp)
/usr/bin/time -v "$build/tests/ddcsr_tests" --gtest_also_run_disabled_tests \
  --gtest_filter='DiffCoSegBench.*' 2>"$log" | grep -E '^\||^both|^PROBLEM|SKIPPED'
echo
grep -E 'Maximum resident set size' "$log" | sed 's/^[[:space:]]*/peak memory: /'
rm -f "$log"
