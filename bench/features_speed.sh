#!/usr/bin/env bash
# Speed and memory of `ddcsr features` on the real scans in the shared data and on a synthetic
# whole-brain 1.25 mm, 100-volume scan (target: under 20 s on 2 cores, under 4 GB).
# Prints a table: wall time of the whole command (read, compute, write), the feature computation
# alone (as the progress log reports it), CPU time, and peak resident memory from /usr/bin/time -v.
#
# Usage: bench/features_speed.sh [BUILD_DIR] [WORK_DIR]
#   BUILD_DIR  where the ddcsr binary is (default: build)
#   WORK_DIR   scratch space; the synthetic scan (400 MB) is made there once (default: /tmp/ddcsr-bench)
# Environment: DDCSR_SHARED_DATA (default: ../shared/data next to the source tree), THREADS (2).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
work="${2:-/tmp/ddcsr-bench}"
threads="${THREADS:-2}"
data="${DDCSR_SHARED_DATA:-$here/../shared/data}"
bin="$build/ddcsr"
[ -x "$bin" ] || { echo "no ddcsr binary at $bin (build first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
mkdir -p "$work"

synth="$work/synth125"
if [ ! -f "$synth.nii.gz" ]; then
  echo "making the synthetic scan $synth.nii.gz (about a minute) ..." >&2
  /usr/bin/python3 "$here/bench/make_synthetic_dwi.py" "$synth"
fi

scans=()
for s in dwi/tiny/small_101D dwi/philips/dwi dwi/xa30/10_DWI_dir80_PA dwi/xa30/17_DWI_dir80_AP; do
  [ -f "$data/$s.nii.gz" ] && scans+=("$data/$s.nii.gz")
done
scans+=("$synth.nii.gz")

printf "%-28s %-18s %8s %10s %9s %8s %8s %9s %s\n" scan dims vols "wall s" "compute s" "user s" "sys s" "peak MB" "mask ml"
for scan in "${scans[@]}"; do
  name="$(basename "$scan" .nii.gz)"
  out="$work/out_$name"
  log="$work/$name.time"
  /usr/bin/time -v "$bin" --threads "$threads" features "$scan" -o "$out" 2>"$log" >/dev/null || {
    echo "$name: ddcsr failed:" >&2; tail -5 "$log" >&2; continue; }
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; printf "%.1f", s}' "$log")
  user=$(awk -F': ' '/User time/ {printf "%.1f", $2}' "$log")
  sys=$(awk -F': ' '/System time/ {printf "%.1f", $2}' "$log")
  peak=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  compute=$(sed -n 's/.*Features: done in \([0-9.]*\) s.*/\1/p' "$log" | tail -1)
  dims=$(/usr/bin/python3 -c "import nibabel as n,sys; s=n.load(sys.argv[1]).shape; print('x'.join(map(str,s[:3])), s[3] if len(s)>3 else 1)" "$scan")
  ml=$(/usr/bin/python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['mask']['volume_ml']))" "$out/features.json")
  printf "%-28s %-18s %8s %10s %9s %8s %8s %9s %s\n" "$name" ${dims% *} ${dims#* } "$wall" "${compute:-?}" "$user" "$sys" "$peak" "$ml"
done
echo "threads: $threads; load average now: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates wall times)"
