#!/usr/bin/env bash
# Speed, memory and truth accuracy of `ddcsr simulate`.
#
#   bench/simulate_speed.sh [BUILD_DIR] [WORK_DIR]
#   SIMULATE_CASES=whole-head bench/simulate_speed.sh ...   (only the whole-head cases)
#
# Prints a table: wall time and peak RSS (GNU time -v) for whole-brain subjects at several
# voxel sizes and thread counts, then the mean |SDF| sampled (trilinearly) at the truth
# vertices, then the full-resolution self-intersection check of the truth surfaces.
# Target (issue 4): 1.5 mm, 64 directions, < 60 s on 2 cores, < 4 GB.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
work="${2:-$(mktemp -d /tmp/ddcsr-simulate-bench.XXXXXX)}"
ddcsr="$build/ddcsr"
tests="$build/tests/ddcsr_tests"
[[ -x "$ddcsr" ]] || { echo "no ddcsr binary at $ddcsr (build first)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 2; }
mkdir -p "$work"

printf "%-34s %7s %5s %10s %8s %11s %10s\n" "case" "voxel" "thr" "wall (s)" "cpu (s)" "peak (MB)" "dwi (MB)"
run_case() {  # name voxel threads args...
  local name="$1" voxel="$2" threads="$3"
  shift 3
  local out="$work/$name" log="$work/$name.time"
  rm -rf "$out"
  /usr/bin/time -v "$ddcsr" --threads "$threads" -q simulate "$out" --voxel-size "$voxel" "$@" 2>"$log" >/dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  local cpu
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$log")
  local size
  size=$(du -m "$out/dwi.nii.gz" | cut -f1)
  printf "%-34s %7s %5s %10.1f %8s %11s %10s\n" "$name" "$voxel" "$threads" "$wall" "$cpu" "$rss" "$size"
}

cases="${SIMULATE_CASES:-all}"
if [[ "$cases" != whole-head ]]; then
  run_case "1.5mm_64dir_6b0" 1.5 2 --shells 1000:32,2000:32 --b0 6
  run_case "1.5mm_64dir_6b0_1thread" 1.5 1 --shells 1000:32,2000:32 --b0 6
  run_case "2.0mm_default_90dir" 2.0 2
  run_case "2.5mm_64dir_fsaverage5" 2.5 2 --shells 1000:64 --b0 4 \
    --geometry "$here/../shared/data/fsaverage5"
  run_case "1.5mm_64dir_sdf1.0mm" 1.5 2 --shells 1000:32,2000:32 --b0 6 --sdf-voxel-size 1.0
fi
# Whole heads (skull, scalp, eyes, folia, midline structures): the grid grows by the head's
# layers. Fixed physics keeps the whole field of view (the largest grid); random physics at a
# pinned resolution adds the point-spread pass (seed 3 draws blur and ringing, and a field of
# view that stops 31 mm below the vertex).
run_case "wholehead_1.5mm_64dir_1thr" 1.5 1 --shells 1000:32,2000:32 --b0 6 \
  --anatomy whole-head --seed 3
run_case "wholehead_2.5mm_64dir_1thr" 2.5 1 --shells 1000:32,2000:32 --b0 6 \
  --anatomy whole-head --seed 3
run_case "wholehead_1.5mm_64dir_random_1thr" 1.5 1 --shells 1000:32,2000:32 --b0 6 \
  --anatomy whole-head --physics random --seed 3
run_case "wholehead_2.5mm_64dir_random_1thr" 2.5 1 --shells 1000:32,2000:32 --b0 6 \
  --anatomy whole-head --physics random --seed 3
[[ "$cases" == whole-head ]] && { echo "outputs in $work"; exit 0; }

if /usr/bin/python3 -c "import nibabel, scipy" 2>/dev/null; then
  echo
  printf "%-34s %-10s %12s %12s\n" "case" "surface" "mean|SDF|" "p95|SDF|"
  for name in 1.5mm_64dir_6b0 2.0mm_default_90dir 1.5mm_64dir_sdf1.0mm; do
    /usr/bin/python3 - "$work/$name" "$name" <<'EOF'
import sys
import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates
folder, name = sys.argv[1], sys.argv[2]
for hemi in ("lh", "rh"):
    for surf in ("white", "pial"):
        v = nib.load(f"{folder}/surf/{hemi}.{surf}.surf.gii").agg_data("NIFTI_INTENT_POINTSET")
        img = nib.load(f"{folder}/sdf/{hemi}.{surf}.nii.gz")
        ijk = (np.linalg.inv(img.affine) @ np.c_[v, np.ones(len(v))].T)[:3]
        s = np.abs(map_coordinates(img.get_fdata(), ijk, order=1))
        print(f"{name:34s} {hemi + '.' + surf:10s} {s.mean():12.3f} {np.percentile(s, 95):12.3f}")
EOF
  done
fi

if [[ -x "$tests" ]]; then
  echo
  echo "Full-resolution truth surfaces (163,842 vertices each), seeds 1-3:"
  "$tests" --gtest_also_run_disabled_tests --gtest_filter='*FullResolutionTruthIsValid*' 2>&1 |
    grep -E "^seed|OK|FAILED" || true
fi
echo
echo "outputs in $work"
