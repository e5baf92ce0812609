#!/usr/bin/env bash
# Simulates the training cohort of the shipped model (and four held-out subjects) with ddcsr simulate.
#   models/make_cohort.sh DDCSR OUTDIR [--extended] [--varied-crowns] [--calibrated-white] [--mixed-white]
# --extended also simulates seeds 113-124 (the second twelve of the runs in models/README.md that
# trained on 24 subjects; the shipped model does not use them).
# --calibrated-white gives every subject the white-matter FA per fibre of its last column
# (simulate --white-matter-fa, 0.45-0.60) instead of 0.76: FA distributions like the real scans'
# (bench/feature_domain.py). Write it to another OUTDIR, as --varied-crowns.
# --mixed-white (implies --extended) keeps the first twelve at 0.76 and gives the second twelve
# their calibrated FA, so one cohort spans both; it also simulates the four held-out subjects with
# calibrated FA in OUTDIR/heldout-calibrated (the held-out phantoms nearest the real scans' FA).
# --varied-crowns gives each procedural subject the thickest crown of its last column (simulate
# --max-thickness, 3.0-4.5 mm) instead of 4.5 for all, and adds three held-out subjects with thin
# crowns (sub-205..207: 3.2 mm, the protocols of sub-201, 202, 204). Write it to another OUTDIR:
# a subject already simulated is never redone.
# Varied on purpose: voxel size 1.25-2.5 mm, single- and multi-shell, SNR 10-40, every storage
# orientation, procedural and real (fsaverage5) cortical geometry, bias fields.
set -euo pipefail
ddcsr=$1
out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/train" "$out/heldout"
fsavg=$root/data/fsaverage5
#        seed voxel shells                    snr geometry orientation bias crown white-fa
cohort="101 1.5  1000:30                   30  proc  LAS     0.0  3.2  0.50
102 2.0  1000:30,2000:60           20  proc  RAS     0.2  4.5  0.55
103 2.5  2500:20                   15  proc  LPI     0.0  3.0  0.45
104 1.5  1000:20,2000:30,3000:30   40  proc  oblique 0.1  3.5  0.60
105 2.0  1000:64                   25  fsavg LAS     0.0  -    0.50
106 2.5  1000:30,2000:30           10  proc  LAS     0.3  4.0  0.55
107 1.25 1000:30                   30  proc  RAS     0.0  3.2  0.45
108 2.0  2500:30                   35  fsavg oblique 0.1  -    0.60
109 1.5  1000:30,2500:30           20  proc  LAS     0.0  3.5  0.50
110 2.0  3000:40                   25  proc  LPI     0.2  3.0  0.55
111 2.5  1000:12                   20  fsavg RAS     0.0  -    0.45
112 1.75 2000:30                   30  proc  LAS     0.1  4.0  0.60"
extended="113 1.5  1000:30,2000:30           25  fsavg LAS     0.1  -    0.50
114 2.0  1000:30                   15  fsavg RAS     0.2  -    0.55
115 1.25 1000:30,2000:30,3000:30   30  fsavg LPI     0.0  -    0.45
116 2.5  2000:30                   20  fsavg oblique 0.0  -    0.60
117 1.75 1000:64                   35  fsavg LAS     0.2  -    0.50
118 1.5  2500:30                   10  fsavg RAS     0.1  -    0.55
119 2.0  1000:20,2000:20           30  proc  oblique 0.0  3.2  0.45
120 1.5  1000:30                   15  proc  LPI     0.1  3.5  0.60
121 2.5  1000:30,2500:30           35  proc  LAS     0.2  3.0  0.50
122 1.25 2000:40                   25  proc  RAS     0.0  4.5  0.55
123 1.75 1000:30,2000:30           20  proc  LAS     0.3  3.2  0.45
124 2.0  3000:30                   40  proc  LPI     0.0  4.0  0.60"
thin="205 1.5  1000:30,2000:30           25  proc  LAS     0.1  3.2  0.50
206 2.5  1000:30                   20  proc  RAS     0.0  3.2  0.55
207 2.5  1000:30,2000:30           15  proc  LPI     0.2  3.2  0.45"
heldout="201 1.5  1000:30,2000:30           25  proc  LAS     0.1  4.5  0.50
202 2.5  1000:30                   20  proc  RAS     0.0  4.5  0.55
203 1.5  1000:64                   30  fsavg RAS     0.0  -    0.50
204 2.5  1000:30,2000:30           15  proc  LPI     0.2  4.5  0.45"
extended_cohort=0 varied_crowns=0 calibrated_white=0 mixed_white=0
for flag in "${@:3}"; do
  case $flag in
    --extended) extended_cohort=1 ;;
    --varied-crowns) varied_crowns=1 ;;
    --calibrated-white) calibrated_white=1 ;;
    --mixed-white) mixed_white=1 extended_cohort=1 ;;
    *) echo "make_cohort.sh: unknown option $flag" >&2; exit 2 ;;
  esac
done
make() {
  local dir=$1 seed=$2 vox=$3 shells=$4 snr=$5 geom=$6 orient=$7 bias=$8 crown=$9 white_fa=${10}
  [[ -f "$dir/sub-$seed/meta.json" ]] && return 0
  local g=()
  [[ $geom == fsavg ]] && g=(--geometry "$fsavg")
  [[ $geom == proc && $varied_crowns == 1 ]] && g=(--max-thickness "$crown")
  [[ $calibrated_white == 1 ]] && g+=(--white-matter-fa "$white_fa")
  "$ddcsr" -q simulate "$dir/sub-$seed" --seed "$seed" --voxel-size "$vox" --shells "$shells" --snr "$snr" \
    --orientation "$orient" --bias-field "$bias" --b0 3 "${g[@]}"
  echo "simulated $dir/sub-$seed"
}
make_all() {  # DIR LIST: one subject per line of LIST
  while read -r seed vox shells snr geom orient bias crown white_fa; do
    make "$1" "$seed" "$vox" "$shells" "$snr" "$geom" "$orient" "$bias" "$crown" "$white_fa"
  done <<<"$2"
}
make_all "$out/train" "$cohort"
if [[ $mixed_white == 1 ]]; then calibrated_white=1; fi
if [[ $extended_cohort == 1 ]]; then make_all "$out/train" "$extended"; fi
if [[ $mixed_white == 1 ]]; then calibrated_white=0; fi
make_all "$out/heldout" "$heldout"
if [[ $varied_crowns == 1 ]]; then make_all "$out/heldout" "$thin"; fi
if [[ $mixed_white == 1 ]]; then
  calibrated_white=1
  mkdir -p "$out/heldout-calibrated"
  make_all "$out/heldout-calibrated" "$heldout"
fi
