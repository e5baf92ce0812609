#!/usr/bin/env bash
# Reproduces models/sdfnet.pt: simulates the cohort, exports the untrained network, trains it.
#   models/train_shipped.sh WORKDIR
# The shipped file stopped at step 450 of a 700-step schedule (see models/README.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1
ddcsr=$root/build/ddcsr
"$root/models/make_cohort.sh" "$ddcsr" "$work"
/usr/bin/python3 "$root/models/sdfnet.py" export --channels b0,fa,md,ad,rd,l1,l2,l3,sm_b1000,sm_b2500,mask \
  --spacing 2 --width 12 --levels 4 -o "$work/init.pt"
# The first six training subjects (sub-101..106), as for the shipped model.
sims=$(ls -d "$work"/train/sub-10[1-6])
"$ddcsr" train --model "$work/init.pt" -o "$work/sdfnet.pt" --sim $sims --resample-targets \
  --steps 700 --stop-at 450 --batch 4 --patch 32 --lr 2e-3 --val-fraction 0.15 --val-every 50 --val-patches 16 \
  --checkpoint-every 25 --seed 1
