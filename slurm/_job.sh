# Shared set-up of the sbatch templates (sourced from the job script, never submitted).
# shellcheck shell=bash
source "$PARTIME_HOME/launch/_common.sh"

# A copied batch script has no useful $0; name errors after the job instead.
die() {
    echo "${SLURM_JOB_NAME:-partime-job}: error: $1" >&2
    exit "${2:-2}"
}

# checked: end here after validation when submit.sh dry-runs the template
# (PARTIME_CHECK_ONLY=1), so a bad variable fails before anything is queued.
checked() {
    [[ "${PARTIME_CHECK_ONLY:-0}" == 1 ]] && exit 0
    return 0
}

# split_args NAME VALUE: the words of VALUE (whitespace-separated, no quoting) into array NAME.
split_args() {
    read -r -a "$1" <<<"$2"
}

# mpi_launcher: fill array LAUNCH with the command that starts one MPI rank per task:
# Hydra's mpiexec inside the allocation (the default; it starts its proxies with srun), or
# srun with a PMI plug-in. Both run the MPICH wheel from PyPI, but srun --mpi=pmi2 failed in
# MPI_Init in about 1 of 20 starts on the Slurm 22.05 test machine (garbled PMI2 values:
# "UCX ... invalid bandwidth" or "POSIX_comm_bootstrap: Out of memory"); mpiexec never did.
mpi_launcher() {
    case "${PARTIME_LAUNCH:-mpiexec}" in
        srun) LAUNCH=(srun --mpi="${PARTIME_SRUN_MPI:-pmi2}" --kill-on-bad-exit=1) ;;
        mpiexec) LAUNCH=(mpiexec -n "${SLURM_NTASKS:-1}") ;;
        *) die "PARTIME_LAUNCH must be 'srun' or 'mpiexec', got '$PARTIME_LAUNCH'" ;;
    esac
}

# job_environment: activate PARTIME_VENV if given (else the submitting shell's environment,
# which sbatch passes on) and give every rank one math thread.
job_environment() {
    if [[ -n "${PARTIME_VENV:-}" ]]; then
        [[ -f "$PARTIME_VENV/bin/activate" ]] || die "PARTIME_VENV=$PARTIME_VENV has no bin/activate"
        # shellcheck disable=SC1091
        source "$PARTIME_VENV/bin/activate"
    fi
    export_threads 1
    command -v partime >/dev/null || die "'partime' not found on the compute node; set PARTIME_VENV"
}
