#!/usr/bin/env bash
# Trains SDFNet on whole heads with randomised physics, in rounds of fresh subjects, so that
# training for longer never means fitting one cohort harder (issue 24; models/README.md).
#   models/train_wholehead.sh WORKDIR [ROUNDS]
# Each round simulates ROUND_SUBJECTS subjects that no earlier round saw (`ddcsr simulate --anatomy
# random --physics random`, procedural and fsaverage5 folding alternately, seeds 20000 + 100 r + i),
# fine-tunes the current checkpoint on them for ROUND_STEPS steps (Adam restarted, cosine decay
# within the round), validates on two fixed subjects no round draws (seeds 9001, 9002), and
# replaces the checkpoint. The checkpoint (models/wholehead.ckpt.pt) and the log of rounds
# (models/wholehead.tsv) are committed: a later session continues with the next round. Round 1
# starts from models/sdfnet.pt. Rerunning from an empty log with the same build reproduces every
# round bit for bit (training is deterministic for a given --threads).
# Masks are the ones `recon` computes (--sim-mask computed): the mask is an input channel, and the
# simulator's exact intracranial mask would hand the network a fixed distance from its edge to
# the pial surface that no real scan keeps.
# Environment: ROUND_SUBJECTS (8), ROUND_STEPS (600), DDCSR (build/ddcsr), THREADS (2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1
rounds=${2:-1}
ddcsr=${DDCSR:-$root/build/ddcsr}
threads=${THREADS:-2}
subjects=${ROUND_SUBJECTS:-8}
steps=${ROUND_STEPS:-600}
ckpt=$root/models/wholehead.ckpt.pt
log=$root/models/wholehead.tsv
fsavg=$root/data/fsaverage5
mkdir -p "$work"
[[ -f $log ]] || printf 'round\tseeds\tsteps\tfirst_loss\tfinal_loss\tval_mae_near_mm\tsimulate_s\ttrain_s\tgit\n' >"$log"

simulate() {  # seed geometry-flag... outdir
  local seed=$1 out=$2
  shift 2
  [[ -f $out/meta.json ]] && return 0
  "$ddcsr" --threads 1 --quiet simulate --seed "$seed" --anatomy random --physics random "$@" \
    --force "$out" >"$out.log" 2>&1 || { cat "$out.log" >&2; return 1; }
}

# Two fixed validation subjects, one of each folding.
simulate 9001 "$work/val-9001"
simulate 9002 "$work/val-9002" --geometry "$fsavg"

for ((n = 0; n < rounds; n++)); do
  r=$(($(tail -n +2 "$log" | wc -l) + 1))
  start=$ckpt
  [[ -f $start ]] || start=$root/models/sdfnet.pt
  pool=$work/round-$r
  mkdir -p "$pool"
  seeds=()
  t0=$(date +%s)
  for ((i = 0; i < subjects; i += 2)); do
    pids=()
    for j in $i $((i + 1)); do
      ((j < subjects)) || continue
      seed=$((20000 + 100 * r + j))
      seeds+=("$seed")
      geo=()
      ((j % 2 == 1)) && geo=(--geometry "$fsavg")
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
    --steps "$steps" --batch 4 --patch 32 --lr 1e-3 --near-weight 3 --surface-fraction 0.6 \
    --val-every 100 --val-patches 24 --checkpoint-every 100 --seed "$r" --log-every 60 \
    2>&1 | grep -v '^Preparing' | tee "$work/round-$r.log"
  t2=$(date +%s)
  line=$(grep 'wrote .*round-' "$work/round-$r.log" | tail -1)
  first=$(sed -E 's/.*loss ([0-9.]+) -> ([0-9.]+).*/\1/' <<<"$line")
  final=$(sed -E 's/.*loss ([0-9.]+) -> ([0-9.]+).*/\2/' <<<"$line")
  mae=$(sed -E 's/.*MAE within [0-9.]+ mm ([0-9.]+) mm.*/\1/' <<<"$line")
  cp "$work/round-$r.pt" "$ckpt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$(IFS=,; echo "${seeds[*]}")" "$steps" \
    "$first" "$final" "$mae" $((t1 - t0)) $((t2 - t1)) \
    "$(git -C "$root" rev-parse --short HEAD)" >>"$log"
  rm -rf "$pool"
done
