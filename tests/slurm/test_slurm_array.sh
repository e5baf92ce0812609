#!/bin/bash
# Integration test: a one-node SLURM cluster on localhost (Debian's slurmctld, slurmd and munge)
# runs a real ddcsr job array over phantom subjects through scripts/slurm/submit.sh.
#   tests/slurm/test_slurm_array.sh DDCSR_BINARY WORK_DIR
# Needs root (munge key, daemons). Exits 0 when every subject was reconstructed by its own task,
# 77 (skipped, for CTest) without root or without the SLURM/munge programs.
set -euo pipefail
ddcsr=$(realpath "$1")
work=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$work" && mkdir -p "$work"/{state,spool,data,out}
work=$(realpath "$work")
host=$(hostname -s)

for cmd in slurmctld slurmd munged sbatch; do
  command -v "$cmd" >/dev/null || { echo "SKIP: $cmd not installed (scripts/install-deps.sh --test installs it)"; exit 77; }
done
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: needs root to start munge and slurm"; exit 77; fi

cleanup() {
  scontrol shutdown >/dev/null 2>&1 || true
  sleep 1
  [[ -f $work/slurmd.pid ]] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
  [[ -f $work/slurmctld.pid ]] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
  [[ -n "${munge_pid:-}" ]] && kill "$munge_pid" 2>/dev/null || true
}
trap cleanup EXIT

# munge: a private key and socket, so a machine-wide munge (if any) is left alone.
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$work/munge" && chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
munge_pid=$(cat "$work/munge/munged.pid")

cpus=$(nproc)
mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
cat >"$work/slurm.conf" <<CONF
ClusterName=ddcsrtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=60 State=UP
CONF
export SLURM_CONF=$work/slurm.conf
slurmctld -c -f "$SLURM_CONF"
slurmd -c -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix" && break
  sleep 1
done
sinfo

# Three small phantom subjects and their list.
printf 'id\tdwi\n' >"$work/data/subjects.tsv"
for i in 1 2 3; do
  "$ddcsr" -q simulate "$work/data/sub-0$i" --seed "$i" --voxel-size 2.5 --sdf-voxel-size 0 --shells 1000:12 --b0 1 --scale 0.5
  printf 'sub-0%s\tsub-0%s/dwi.nii.gz\n' "$i" "$i" >>"$work/data/subjects.tsv"
done

job=$(DDCSR="$ddcsr" SBATCH_MEM_PER_CPU=1024 "$root/scripts/slurm/submit.sh" "$work/data/subjects.tsv" "$work/out" \
  -- --vertices 20000 --threads 1 | tail -1)
echo "submitted array job $job"
for _ in $(seq 900); do
  [[ -z "$(squeue -h -j "$job" 2>/dev/null)" ]] && break
  sleep 1
done
sacct >/dev/null 2>&1 || true
status=0
for i in 1 2 3; do
  report=$work/out/sub-0$i/report.json
  if /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(r['status']!='ok')" "$report" 2>/dev/null; then
    echo "sub-0$i: ok"
  else
    echo "sub-0$i: MISSING or not ok"; status=1
  fi
done
# The cohort's table after the array: three ok rows in list order.
"$ddcsr" -q report "$work/out" --subjects "$work/data/subjects.tsv" -o "$work/out/cohort.tsv"
cut -f1,2 "$work/out/cohort.tsv"
if [[ "$(tail -n +2 "$work/out/cohort.tsv" | cut -f1,2 | tr '\t\n' ': ')" != "sub-01:ok sub-02:ok sub-03:ok " ]]; then
  echo "cohort table: not three ok rows"; status=1
fi
logs=$(ls "$work/out/logs" | wc -l)
echo "task logs: $logs"
[[ $logs -eq 3 ]] || status=1
grep -l "array task" "$work/out/logs"/* >/dev/null || status=1
if [[ $status -ne 0 ]]; then tail -30 "$work/out/logs"/* "$work/slurmctld.log" "$work/slurmd.log" || true; fi
echo "$((status == 0 ? 1 : 0)) passed, $((status == 0 ? 0 : 1)) failed"
exit $status
