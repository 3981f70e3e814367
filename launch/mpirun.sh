#!/usr/bin/env bash
# Run a command on N MPI ranks with MPICH or Open MPI, one math thread per rank.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

usage() {
    cat <<'USAGE'
Usage: launch/mpirun.sh [-n N] [--oversubscribe] [--threads T] [--mpiexec PATH] [--dry-run]
                        [--] COMMAND [ARGS...]

Runs COMMAND on N MPI ranks and exits with its exit code (non-zero if any rank fails).
Picks the MPI flavour from `mpiexec --version` (MPICH/Hydra or Open MPI) and exports
OMP_NUM_THREADS/MKL_NUM_THREADS/OPENBLAS_NUM_THREADS=T to every rank.

  -n, --np N         number of ranks (default: $PARTIME_NP, else the number of CPUs)
  --oversubscribe    allow more ranks than CPUs (required when N > CPUs)
  --threads T        math threads per rank (default 1)
  --mpiexec PATH     launcher to use (default: $PARTIME_MPIEXEC, else mpiexec on PATH)
  --dry-run          print the mpiexec command instead of running it
  -h, --help         show this help

Example:
  launch/mpirun.sh -n 4 partime solve lorenz --t-end 0.64 --slices 4 \
      --fine rk4:0.001 --coarse rk4:0.01 --backend mpi
USAGE
}

np="${PARTIME_NP:-$(cpu_count)}"
mpiexec="${PARTIME_MPIEXEC:-mpiexec}"
threads=1
oversubscribe=0
dry_run=0
while (( $# )); do
    case "$1" in
        -n | --np) need_value "$1" $#; np="$2"; shift 2 ;;
        --oversubscribe) oversubscribe=1; shift ;;
        --threads) need_value "$1" $#; threads="$2"; shift 2 ;;
        --mpiexec) need_value "$1" $#; mpiexec="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) break ;;
    esac
done
(( $# )) || die "no command given (see --help)"
need_posint "-n/--np" "$np"
export_threads "$threads"
cpus="$(cpu_count)"
if (( np > cpus && ! oversubscribe )); then
    die "$np ranks on $cpus CPUs: pass --oversubscribe to allow it"
fi
command -v "$mpiexec" >/dev/null || die "'$mpiexec' not found; pip install 'partime[mpi]' (MPICH wheel) or load your MPI module"

# Hydra (MPICH, Intel MPI) forwards the whole environment and allows oversubscription;
# Open MPI needs both spelled out.
version="$("$mpiexec" --version 2>&1 || true)"
case "$version" in
    *HYDRA* | *"Intel(R) MPI"*) flavour=mpich; cmd=("$mpiexec" -n "$np") ;;
    *"Open MPI"* | *OpenRTE*)
        flavour=openmpi
        cmd=("$mpiexec" -n "$np")
        for var in "${THREAD_VARS[@]}"; do cmd+=(-x "$var"); done
        (( oversubscribe )) && cmd+=(--oversubscribe)
        ;;
    *) die "cannot tell the MPI flavour of '$mpiexec' from its --version output" ;;
esac
cmd+=("$@")

if (( dry_run )); then
    echo "# $flavour"
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
fi
exec "${cmd[@]}"
