#!/usr/bin/env bash
# Test command: installs what is missing (test tools too), builds, and runs the whole suite with CTest,
# then the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
ctest --test-dir build -j"$(nproc 2>/dev/null || echo 2)" --output-on-failure --timeout 900
# Two whole-hemisphere DiffCoSeg runs take minutes when instrumented; the smaller DiffCoSeg tests
# cover the same code under the sanitizers.
scripts/test-sanitize.sh "-DiffCoSeg.Fsaverage5LeftHemisphereCoarse:DiffCoSeg.DeepNarrowGroovesAreFollowedAndBanksDoNotCross"
