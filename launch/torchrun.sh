#!/usr/bin/env bash
# Run a command under torchrun: one rank per GPU (NCCL), or N CPU ranks (gloo) when asked.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

usage() {
    cat <<'USAGE'
Usage: launch/torchrun.sh [--nproc-per-node N] [--nnodes N --node-rank R --master-addr HOST]
                          [--master-port P] [--threads T] [--dry-run] [--] COMMAND [ARGS...]

Starts COMMAND once per rank with torchrun (RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR set);
partime picks the torch backend from them: NCCL with one GPU per local rank when CUDA is
available, gloo on CPU otherwise. Exits non-zero if any rank fails.

  --nproc-per-node N  ranks on this node (default: one per visible GPU; required without GPUs)
  --nnodes N          nodes in the job (default 1); with N > 1 run this script on every node
  --node-rank R       this node's index, 0..N-1 (default 0)
  --master-addr HOST  address of node 0 (required with --nnodes > 1)
  --master-port P     rendezvous port on node 0 (default 29500)
  --threads T         math threads per rank (default 1)
  --dry-run           print the torchrun command instead of running it

Example (one node, every GPU):
  launch/torchrun.sh partime solve lorenz --t-end 0.64 --slices 4 \
      --fine rk4:0.001 --coarse rk4:0.01 --backend torch
USAGE
}

# gpu_count: GPUs this process can see (CUDA_VISIBLE_DEVICES honoured by torch).
gpu_count() {
    python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0
}

nproc_per_node=""
nnodes=1
node_rank=0
master_addr=""
master_port=29500
threads=1
dry_run=0
while (( $# )); do
    case "$1" in
        --nproc-per-node) need_value "$1" $#; nproc_per_node="$2"; shift 2 ;;
        --nnodes) need_value "$1" $#; nnodes="$2"; shift 2 ;;
        --node-rank) need_value "$1" $#; node_rank="$2"; shift 2 ;;
        --master-addr) need_value "$1" $#; master_addr="$2"; shift 2 ;;
        --master-port) need_value "$1" $#; master_port="$2"; shift 2 ;;
        --threads) need_value "$1" $#; threads="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) break ;;
    esac
done
(( $# )) || die "no command given (see --help)"
if [[ -z "$nproc_per_node" ]]; then
    nproc_per_node="$(gpu_count)"
    (( nproc_per_node > 0 )) || die "no GPU visible; pass --nproc-per-node N to run N CPU ranks (gloo)"
fi
need_posint "--nproc-per-node" "$nproc_per_node"
need_posint "--nnodes" "$nnodes"
need_posint "--master-port" "$master_port"
[[ "$node_rank" =~ ^[0-9]+$ ]] && (( node_rank < nnodes )) \
    || die "--node-rank must be an integer in 0..$((nnodes - 1)), got '$node_rank'"
export_threads "$threads"
command -v torchrun >/dev/null || die "'torchrun' not found; activate the environment with torch"

cmd=(torchrun --nproc-per-node "$nproc_per_node")
if (( nnodes == 1 )); then
    # --standalone picks a free local rendezvous port: several jobs can share a node.
    cmd+=(--standalone)
else
    [[ -n "$master_addr" ]] || die "--nnodes $nnodes needs --master-addr (the address of node 0)"
    cmd+=(--nnodes "$nnodes" --node-rank "$node_rank" --master-addr "$master_addr"
        --master-port "$master_port")
fi
cmd+=(--no-python "$@")

if (( dry_run )); then
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
fi
exec "${cmd[@]}"
