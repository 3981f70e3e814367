#!/usr/bin/env bash
# Validate a partime sbatch template's settings, then submit it.
set -euo pipefail
PARTIME_HOME="$(cd "$(dirname "$0")/.." && pwd)"
export PARTIME_HOME
source "$PARTIME_HOME/launch/_common.sh"

usage() {
    cat <<'USAGE'
Usage: slurm/submit.sh TEMPLATE [--ntasks N] [--nodes N] [--time T] [--partition P] [--wait]
                       [-- SBATCH_OPTIONS...]

TEMPLATE: solve | train-hits | train-layerpar | gpu | ray (slurm/TEMPLATE.sbatch) or a path
to an sbatch file.
Checks the counts and the template's PARTIME_* variables (it runs the template with
PARTIME_CHECK_ONLY=1), then calls sbatch; a bad value fails here, before anything is queued.
Options not given keep the template's #SBATCH values.

  --ntasks N       tasks (MPI ranks / GPUs)            --nodes N     nodes (<= tasks)
  --time T         limit: MM, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]
  --partition P    partition/queue                     --wait        block until the job ends
                                                                     and exit with its code
Example:
  PARTIME_SOLVE_ARGS="--t-end 0.64 --slices 8 --fine rk4:0.001 --coarse rk4:0.01" \
      slurm/submit.sh solve --ntasks 8 --time 00:05:00
USAGE
}

(( $# )) || { usage >&2; exit 2; }
case "$1" in
    -h | --help) usage; exit 0 ;;
    */*) template="$1" ;;
    *) template="$PARTIME_HOME/slurm/$1.sbatch" ;;
esac
shift
[[ -f "$template" ]] || die "no template '$template' (solve, train-hits, train-layerpar, gpu, ray or a path)"

sbatch_args=()
ntasks=""
nodes=""
while (( $# )); do
    case "$1" in
        --ntasks) need_value "$1" $#; need_posint "$1" "$2"; ntasks="$2"; sbatch_args+=("--ntasks=$2"); shift 2 ;;
        --nodes) need_value "$1" $#; need_posint "$1" "$2"; nodes="$2"; sbatch_args+=("--nodes=$2"); shift 2 ;;
        --time)
            need_value "$1" $#
            [[ "$2" =~ ^([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}$ ]] || die "--time must look like MM, HH:MM:SS or D-HH:MM:SS, got '$2'"
            sbatch_args+=("--time=$2"); shift 2 ;;
        --partition) need_value "$1" $#; sbatch_args+=("--partition=$2"); shift 2 ;;
        --wait) sbatch_args+=(--wait); shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; sbatch_args+=("$@"); break ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

# sbatch_line OPTION: the value of the template's last "#SBATCH --OPTION=VALUE" line, if any.
sbatch_line() {
    sed -n -E "s/^#SBATCH[[:space:]]+--$1[=[:space:]]+([^[:space:]]+).*/\1/p" "$template" | tail -n 1
}
# Counts edited into the template's #SBATCH lines are checked the same way as the options.
for option in ntasks nodes ntasks-per-node cpus-per-task gpus-per-node; do
    value="$(sbatch_line "$option")"
    [[ -z "$value" ]] || need_posint "'#SBATCH --$option' in $template" "$value"
done
ntasks="${ntasks:-$(sbatch_line ntasks)}"
nodes="${nodes:-$(sbatch_line nodes)}"
if [[ -n "$ntasks" && -n "$nodes" ]] && (( nodes > ntasks )); then
    die "$nodes nodes is more than $ntasks tasks (each node needs a task)"
fi

# The template validates its own variables; SLURM_* stand in for the allocation-to-be.
name="$(basename "$template" .sbatch)"
PARTIME_CHECK_ONLY=1 SLURM_JOB_NAME="partime-$name" SLURM_NTASKS="${ntasks:-1}" \
    SLURM_JOB_NUM_NODES="${nodes:-1}" bash "$template" || exit $?

command -v sbatch >/dev/null || die "sbatch not found: run this on a SLURM login node"
exec sbatch "${sbatch_args[@]}" "$template"
