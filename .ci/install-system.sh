#!/usr/bin/env bash
# Install the system packages the cluster tests need (a one-node SLURM: slurm-wlm + munge).
# Does nothing when they are present; without root or apt-get it says so and leaves the
# SLURM tests to skip themselves.
set -euo pipefail

missing=()
for binary in slurmctld slurmd sbatch munged; do
    command -v "$binary" >/dev/null || missing+=("$binary")
done
if (( ${#missing[@]} == 0 )); then
    echo "install-system: slurm-wlm and munge already installed"
    exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "install-system: missing ${missing[*]} and cannot apt-get install as $(id -un);" \
        "the SLURM tests will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The packages' postinst scripts may try to start services; the tests start their own daemons.
apt-get install -y -q --no-install-recommends slurm-wlm munge
