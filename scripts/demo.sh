#!/usr/bin/env bash
# First-run command: installs what is missing, builds, and runs ddcsr on the bundled real sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=${DDCSR_DEMO_OUT:-$PWD/demo-output}
mkdir -p "$out/surf"
./build/ddcsr info
./build/ddcsr info data/sample/dwi.nii.gz
# Until `recon` lands: put the bundled real cortical surfaces into the sample scan's FreeSurfer and
# GIFTI conventions, as recon writes its outputs.
for hemi in lh rh; do
  side=$([[ $hemi == lh ]] && echo left || echo right)
  for surf in white pial; do
    ./build/ddcsr convert "data/fsaverage5/${surf}_${side}.gii.gz" "$out/surf/$hemi.$surf" --ref data/sample/dwi.nii.gz
    ./build/ddcsr convert "$out/surf/$hemi.$surf" "$out/surf/$hemi.$surf.surf.gii"
  done
done
echo "demo: surfaces written to $out/surf"
