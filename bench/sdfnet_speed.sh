#!/usr/bin/env bash
# SDFNet inference speed and peak memory on a whole-brain 1 mm grid (160 x 192 x 160, the feature
# stage's padded size for an adult brain), whole-volume vs sliding-window, through `ddcsr sdf`.
# Usage: bench/sdfnet_speed.sh [BUILD_DIR] [THREADS] [MODEL]
# Without MODEL, an untrained model with the default architecture and the feature stage's 12
# channels is exported (speed does not depend on the weights).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
threads="${2:-2}"
model="${3:-}"
ddcsr="$build/ddcsr"
[ -x "$ddcsr" ] || { echo "no ddcsr binary at $ddcsr (build first)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

channels="b0,fa,md,ad,rd,l1,l2,l3,sm_b1000,sm_b2500,midline,mask"
if [ -z "$model" ]; then
  model="$work/sdfnet_init.pt"
  /usr/bin/python3 "$here/models/sdfnet.py" export --channels "$channels" -o "$model" >/dev/null
fi
nch=$("$ddcsr" sdf --model "$model" --info | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["input_channels"]))')

# Smooth random features, zero outside a brain-sized ellipsoid, like masked normalised features.
/usr/bin/python3 - "$work/features.nii" "$nch" <<'PY'
import sys
import numpy as np, nibabel as nib
from scipy.ndimage import gaussian_filter
out, nch = sys.argv[1], int(sys.argv[2])
shape = (160, 192, 160)
rng = np.random.default_rng(0)
i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
inside = (i / 0.85) ** 2 + (j / 0.85) ** 2 + (k / 0.8) ** 2 < 1
data = np.zeros(shape + (nch,), np.float32)
for c in range(nch):
    data[..., c] = gaussian_filter(rng.standard_normal(shape).astype(np.float32), 2) * 3 * inside
affine = np.diag([1.0, 1.0, 1.0, 1.0]); affine[:3, 3] = [-80, -110, -70]
nib.save(nib.Nifti1Image(data, affine), out)
PY

run() {  # mode extra-args...
  local mode="$1"; shift
  local log="$work/$mode.log"
  /usr/bin/time -f "%e %M %U %S" -o "$work/$mode.time" "$ddcsr" --threads "$threads" sdf --model "$model" \
    --features "$work/features.nii" -o "$work/sdf_$mode.nii" --mode "$mode" "$@" >"$log" 2>&1 \
    || { cat "$log" >&2; exit 1; }
  read -r wall rss_kb user sys <"$work/$mode.time"
  local infer
  infer=$(sed -n 's/.*(inference \([0-9.]*\) s).*/\1/p' "$log")
  printf "| %-44s | %13s | %10.1f | %12.1f | %13d |\n" "$mode $*" "$infer" "$wall" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$((rss_kb / 1024))"
}

echo "SDFNet inference, grid 160x192x160 (1 mm), $nch channels, $threads threads, $(basename "$model")"
echo "(inference: predict() alone; total: the whole command, library loading and NIfTI I/O included;"
echo " CPU time: user + system of the whole command, a load-independent check on a shared machine;"
echo " load average before the runs: $(cut -d' ' -f1 /proc/loadavg))"
echo
printf "| %-44s | %13s | %10s | %12s | %13s |\n" "mode" "inference (s)" "total (s)" "CPU time (s)" "peak RSS (MB)"
printf "|%s|%s|%s|%s|%s|\n" "----------------------------------------------" "---------------" "------------" "--------------" "---------------"
# The default averages the direct pass with the left-right mirrored one (two passes); the other
# rows time one pass (--no-mirror), and the whole-vs-sliding check below compares one pass each.
run whole
run whole --no-mirror
run sliding --patch 96 --overlap 32 --no-mirror
run sliding --patch 128 --overlap 32 --no-mirror
/usr/bin/python3 - "$work/sdf_whole.nii" "$work/sdf_sliding.nii" <<'PY'
import sys
import numpy as np, nibabel as nib
a = nib.load(sys.argv[1]).get_fdata(); b = nib.load(sys.argv[2]).get_fdata()
d = np.abs(a - b)
print(f"\nwhole vs sliding (last run): mean |diff| {d.mean():.4f} mm, max {d.max():.4f} mm, "
      f"output range {a.min():.2f}..{a.max():.2f} mm")
PY
