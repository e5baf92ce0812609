#!/bin/bash
# Submits one SLURM array task per subject of a ddcsr subject list.
#   scripts/slurm/submit.sh SUBJECTS.tsv OUTPUT_ROOT [--max-parallel K] [-- recon options]
# Extra sbatch options go in SBATCH_* environment variables (e.g. SBATCH_PARTITION=short).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -lt 2 ]]; then
  echo "usage: $0 SUBJECTS.tsv OUTPUT_ROOT [--max-parallel K] [-- recon options]" >&2
  exit 2
fi
list=$1
out=$2
shift 2
throttle=""
if [[ "${1:-}" == "--max-parallel" ]]; then throttle="%$2"; shift 2; fi
[[ "${1:-}" == "--" ]] && shift
# Data lines: not blank, not comments, minus the header.
n=$(grep -v -e '^[[:space:]]*$' -e '^#' "$list" | tail -n +2 | wc -l)
if ((n == 0)); then
  echo "$list: no subjects" >&2
  exit 3
fi
mkdir -p "$out/logs"
sbatch --parsable --array="0-$((n - 1))$throttle" --output="$out/logs/ddcsr_%A_%a.log" \
  "$here/ddcsr-array.sbatch" "$(realpath "$list")" "$(realpath "$out")" "$@"
echo "$n tasks; when they end, the cohort's table: ddcsr report $out --subjects $list -o $out/cohort.tsv" >&2
