#!/usr/bin/env bash
# Reproduces models/sdfnet.pt: simulates the cohort, exports the untrained network, and trains it
# in the three stages the shipped file went through (models/README.md, "The shipped model").
#   models/train_shipped.sh WORKDIR
# About 50 min of training on 2 idle CPU cores plus 10 min of simulation and 10 min of exact SDF
# targets. The stages ran on a shared machine with changing thread counts, so the weights are
# the same schedule and data but not bit-identical to the shipped ones.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1
ddcsr=$root/build/ddcsr
"$root/models/make_cohort.sh" "$ddcsr" "$work"
/usr/bin/python3 "$root/models/sdfnet.py" export --channels b0,fa,md,ad,rd,l1,l2,l3,sm_b1000,sm_b2500,mask \
  --spacing 2 --width 12 --levels 4 -o "$work/init.pt"
common=(--batch 4 --patch 32 --val-every 100 --checkpoint-every 50)
six=$(ls -d "$work"/train/sub-10[1-6])
twelve=$(ls -d "$work"/train/sub-1[01][0-9])

# Stage 1: six subjects, targets resampled from the simulated SDF volumes; a 700-step schedule
# stopped at step 450.
"$ddcsr" train --model "$work/init.pt" -o "$work/stage1.pt" --sim $six --resample-targets \
  --steps 700 --stop-at 450 --lr 2e-3 --val-fraction 0.15 --val-patches 16 --seed 1 "${common[@]}"
# Stage 2: all twelve subjects, resampled targets, a fresh optimiser; a 3000-step schedule to step
# 550, then the schedule shortened to 1500 steps and continued to step 950.
"$ddcsr" train --model "$work/stage1.pt" -o "$work/stage2.pt" --sim $twelve --resample-targets \
  --save-pairs "$work/pairs-resampled" --steps 3000 --stop-at 550 --lr 1e-3 --val-fraction 0.17 \
  --val-patches 24 --seed 2 "${common[@]}"
"$ddcsr" train --resume -o "$work/stage2.pt" --sim $twelve --resample-targets --steps 1500 --stop-at 950 \
  --lr 1e-3 --val-fraction 0.17 --val-patches 24 --seed 2 "${common[@]}"
# Stage 3: exact signed distances to the truth meshes on the feature grid as targets (trilinear
# resampling of a 1.5-2.5 mm SDF volume is off by 0.1-0.3 mm at the surface), lower learning rate.
"$ddcsr" train --model "$work/stage2.pt" -o "$work/sdfnet.pt" --sim $twelve \
  --save-pairs "$work/pairs-exact" --steps 900 --lr 5e-4 --val-fraction 0.17 --val-patches 24 --seed 3 \
  "${common[@]}"
echo "trained: $work/sdfnet.pt (validate: models/validate.py --model $work/sdfnet.pt $work/heldout/sub-*)"
