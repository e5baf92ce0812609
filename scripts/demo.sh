#!/usr/bin/env bash
# First-run command: installs what is missing, builds, and reconstructs the bundled real sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=${DDCSR_DEMO_OUT:-$PWD/demo-output}
./build/ddcsr info
./build/ddcsr info data/sample/dwi.nii.gz
# --force: the demo always runs, even when an earlier demo finished.
./build/ddcsr recon data/sample/dwi.nii.gz -o "$out" --force
echo "demo: surfaces in $out/surf, QC pictures in $out/qc (open $out/qc/coronal.png first), report in $out/report.json"
