#!/usr/bin/env bash
# Installs, with apt and by Debian package name, whatever ddcsr needs that this machine lacks.
# Idempotent: does nothing when everything is present. Usage: scripts/install-deps.sh [--test]
set -euo pipefail

packages=(build-essential cmake git pkg-config zlib1g-dev
  libtorch-dev libinsighttoolkit5-dev libcgal-dev libeigen3-dev libcli11-dev libspdlog-dev
  nlohmann-json3-dev)
if [[ "${1:-}" == "--test" ]]; then
  # Tests: GoogleTest, and independent readers/fitters on Debian's own Python.
  packages+=(libgtest-dev libgmock-dev python3 python3-numpy python3-nibabel python3-scipy python3-dipy python3-torch
    python3-pil  # bench/simulate_picture.py
    connectome-workbench  # wb_command reads the GIFTI outputs
    mrtrix3  # mrinfo reads the ribbon label volume
    clang libclang-rt-14-dev clang-format bc
    slurmctld slurmd slurm-client munge)  # a one-node SLURM cluster for the job-array test
fi
# Speeds up rebuilds; harmless when absent.
packages+=(ccache)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
