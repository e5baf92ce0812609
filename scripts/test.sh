#!/usr/bin/env bash
# Test command: installs what is missing (test tools too), builds, and runs the whole suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
ctest --test-dir build -j"$(nproc 2>/dev/null || echo 2)" --output-on-failure --timeout 900
