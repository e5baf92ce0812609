#!/usr/bin/env bash
# Configures and builds ddcsr (Release) in ./build. Usage: scripts/build.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j"$jobs" >>build.log 2>&1 || { grep -E "error|Error" -A3 build.log | head -60; exit 1; }
echo "build: ok ($(pwd)/build/ddcsr)"
