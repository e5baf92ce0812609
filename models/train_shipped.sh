#!/usr/bin/env bash
# Reproduces models/sdfnet.pt: simulates the cohort, exports the untrained network, trains it.
#   models/train_shipped.sh WORKDIR [SIMULATOR]
# SIMULATOR: the ddcsr that simulates the cohort (default: this build). The shipped cohort came
# from the simulator of 79fe5f0, before the touching sulcal banks; build that commit in a scratch
# worktree and pass its build/ddcsr to simulate the same phantoms (models/README.md). A rerun
# reproduces the shipped model's phantom accuracy, not its behaviour on real scans.
# 2600 steps took 26 min on two CPU cores (see models/README.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1
ddcsr=$root/build/ddcsr
"$root/models/make_cohort.sh" "${2:-$ddcsr}" "$work"
/usr/bin/python3 "$root/models/sdfnet.py" export --channels b0,fa,md,ad,rd,l1,l2,l3,sm_b1000,sm_b2500,midline,mask \
  --spacing 2 --width 12 --levels 4 -o "$work/init.pt"
# All twelve training subjects (sub-101..112; one of them is drawn for validation), exact targets.
sims=$(ls -d "$work"/train/sub-10* "$work"/train/sub-11[0-2])
"$ddcsr" --threads 2 train --model "$work/init.pt" -o "$work/sdfnet.pt" --sim $sims \
  --steps 2600 --batch 4 --patch 32 --lr 2e-3 --near-weight 3 --val-fraction 0.1 --val-every 100 --val-patches 24 \
  --checkpoint-every 50 --seed 1
