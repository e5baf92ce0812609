#!/usr/bin/env bash
# Trains SDFNet on whole heads with randomised physics from a rolling pool of fresh subjects, so
# that training for longer never means fitting one cohort harder (issue 24; models/README.md).
#   models/train_wholehead.sh WORKDIR [ROUNDS]
# Round r trains on the subjects of rounds r-1 and r: ROUND_SUBJECTS new ones per round (`ddcsr
# simulate --anatomy random --physics random`, procedural and fsaverage5 folding alternately,
# seeds 20000 + 100 r + i), so each subject is seen in two rounds and then dropped. It fine-tunes
# the current checkpoint for ROUND_STEPS steps (Adam restarted, cosine decay within the round),
# validates on two fixed subjects no round draws (seeds 9001, 9002), and replaces the checkpoint.
# The checkpoint (models/wholehead.ckpt.pt) and the log of rounds (models/wholehead.tsv) are
# committed: a later session continues with the next round. Round 1 starts from START_MODEL
# (default models/sdfnet.pt; the shipped model's run started from 535c2d0's, models/README.md).
# Rerunning from an empty log with the same build reproduces every round bit for bit (training
# is deterministic for a given --threads).
# Masks are the ones `recon` computes (--sim-mask computed): the mask is an input channel, and the
# simulator's exact intracranial mask would hand the network a fixed distance from its edge to
# the pial surface that no real scan keeps. Targets are exact distances to the meshes, so the
# simulator's own SDF volumes are written on the DWI grid only (--sdf-voxel-size 0: a fifth of
# the simulation time).
# Environment: ROUND_SUBJECTS (4), ROUND_STEPS (600), LR (peak learning rate of a round, 1e-3),
# DDCSR (build/ddcsr), THREADS (2), START_MODEL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1
rounds=${2:-1}
ddcsr=${DDCSR:-$root/build/ddcsr}
threads=${THREADS:-2}
subjects=${ROUND_SUBJECTS:-4}
steps=${ROUND_STEPS:-600}
lr=${LR:-1e-3}
ckpt=$root/models/wholehead.ckpt.pt
log=$root/models/wholehead.tsv
fsavg=$root/data/fsaverage5
mkdir -p "$work"
[[ -f $log ]] || printf 'round\tseeds\tsteps\tfirst_loss\tfinal_loss\tval_mae_near_mm\tsimulate_s\ttrain_s\tgit\tlr\n' >"$log"

# Protocols (shells, b=0 volumes) cycled over the seeds: --physics random draws everything but
# the acquisition scheme, which the features see directly (single and multi-shell, b=1000 to
# 3000, 12 to 90 directions; philips_enh's and XA30's own among them).
protocols=("1000:30 6" "1000:16 1" "2500:20 1" "1000:30,2000:60 6" "1000:64 4" "1000:30,2000:30,3000:30 5"
  "3000:40 3" "1000:12 2" "2000:30 4" "1000:20,2500:30 3")

simulate() {  # seed outdir [extra simulate options]
  local seed=$1 out=$2
  shift 2
  [[ -f $out/meta.json ]] && return 0
  local proto=(${protocols[$(((seed * 7 + seed / 100) % ${#protocols[@]}))]})
  "$ddcsr" --threads 1 --quiet simulate --seed "$seed" --anatomy random --physics random "$@" \
    --shells "${proto[0]}" --b0 "${proto[1]}" --sdf-voxel-size 0 --force "$out" >"$out.log" 2>&1 ||
    { cat "$out.log" >&2; return 1; }
}

# Two fixed validation subjects, one of each folding.
simulate 9001 "$work/val-9001" &
simulate 9002 "$work/val-9002" --geometry "$fsavg"
wait

seeds_of() { for ((i = 0; i < subjects; i++)); do echo $((20000 + 100 * $1 + i)); done; }

for ((n = 0; n < rounds; n++)); do
  r=$(($(tail -n +2 "$log" | wc -l) + 1))
  start=$ckpt
  [[ -f $start ]] || start=${START_MODEL:-$root/models/sdfnet.pt}
  pool=$work/pool
  mkdir -p "$pool"
  mapfile -t seeds < <(seeds_of $((r - 1)); seeds_of "$r")
  for d in "$pool"/s*; do  # subjects of earlier rounds leave the pool
    [[ -d $d ]] || continue
    [[ " ${seeds[*]} " == *" ${d##*/s} "* ]] || rm -rf "$d" "$d.log"
  done
  t0=$(date +%s)
  for ((i = 0; i < ${#seeds[@]}; i += 2)); do
    pids=()
    for seed in "${seeds[@]:i:2}"; do
      geo=()
      ((seed % 2 == 1)) && geo=(--geometry "$fsavg")
      simulate "$seed" "$pool/s$seed" "${geo[@]}" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
  done
  t1=$(date +%s)
  sims=()
  for s in "${seeds[@]}"; do sims+=(--sim "$pool/s$s"); done
  "$ddcsr" --threads "$threads" train --model "$start" -o "$work/round-$r.pt" "${sims[@]}" \
    --val-sim "$work/val-9001" --val-sim "$work/val-9002" --sim-mask computed \
    --steps "$steps" --batch 4 --patch 32 --lr "$lr" --near-weight 3 --surface-fraction 0.6 \
    --val-every 100 --val-patches 24 --checkpoint-every 100 --seed "$r" --log-every 60 \
    2>&1 | grep --line-buffered -v '^Preparing' | tee "$work/round-$r.log"
  t2=$(date +%s)
  line=$(grep 'wrote .*round-' "$work/round-$r.log" | tail -1)
  first=$(sed -E 's/.*loss ([0-9.]+) -> ([0-9.]+).*/\1/' <<<"$line")
  final=$(sed -E 's/.*loss ([0-9.]+) -> ([0-9.]+).*/\2/' <<<"$line")
  mae=$(sed -E 's/.*MAE within [0-9.]+ mm ([0-9.]+) mm.*/\1/' <<<"$line")
  cp "$work/round-$r.pt" "$ckpt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$(IFS=,; echo "${seeds[*]}")" "$steps" \
    "$first" "$final" "$mae" $((t1 - t0)) $((t2 - t1)) \
    "$(git -C "$root" rev-parse --short HEAD)" "$lr" >>"$log"
done
