# Shared helpers for the launch/ and slurm/ scripts (sourced, not run).
# shellcheck shell=bash

# die MSG [CODE]: print "<script>: error: MSG" to stderr and exit with CODE (default 2).
die() {
    echo "$(basename "$0"): error: $1" >&2
    exit "${2:-2}"
}

# need_posint NAME VALUE: exit with a clear error unless VALUE is an integer >= 1.
need_posint() {
    [[ "$2" =~ ^[0-9]+$ ]] && (( 10#$2 >= 1 )) || die "$1 must be a positive integer, got '$2'"
}

# need_value OPTION ARGC: exit unless OPTION was given a value.
need_value() {
    (( $2 >= 2 )) || die "$1 needs a value"
}

# THREAD_VARS: what sets the math thread pools; torch reads OMP_NUM_THREADS at start-up.
THREAD_VARS=(OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_NUM_THREADS)

# export_threads N: N math threads per rank (default use: 1); ranks each spawning a pool
# the size of the node made small matmuls ~40x slower under srun/mpiexec.
export_threads() {
    need_posint "--threads" "$1"
    local var
    for var in "${THREAD_VARS[@]}"; do export "$var=$1"; done
}

# cpu_count: logical CPUs this process may use (GNU nproc would honour OMP_NUM_THREADS).
cpu_count() {
    env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN
}
