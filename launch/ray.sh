#!/usr/bin/env bash
# Start a Ray head or worker in the background, and stop exactly the processes started here.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

usage() {
    cat <<'USAGE'
Usage: launch/ray.sh head   [--ip IP] [--port P] [--num-cpus N] [COMMON] [-- RAY_START_ARGS...]
       launch/ray.sh worker --address IP:PORT [--ip IP] [--num-cpus N] [COMMON] [-- RAY_START_ARGS...]
       launch/ray.sh stop   [--state-dir DIR] [--timeout S]

head    starts `ray start --head` bound to IP (default 127.0.0.1; give the node's address for
        a multi-node cluster) on port P (default 6379), waits until it is up, and prints its
        address IP:PORT on stdout. The dashboard UI is off.
worker  joins the cluster at IP:PORT from this node (its own address: --ip, else Ray's pick).
stop    stops the head/workers started with this --state-dir (SIGTERM, then SIGKILL of their
        process group after S seconds, default 30); other Ray processes are left alone.

COMMON: --state-dir DIR   pid files, logs and Ray's temp dir (default $PARTIME_RAY_DIR, else
                          /tmp/partime-ray-$USER); at most 40 characters because Ray puts
                          unix sockets under it
        --timeout S       seconds to wait for start-up (default 60)
Ranks/actors get one math thread each (OMP_NUM_THREADS=1 ...). RAY_AUTH_MODE defaults to
disabled (keep the cluster on a private network or loopback).

Example (one machine):
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0    # loopback head: keep Ray on 127.0.0.1
  ADDR=$(launch/ray.sh head --port 6379 --num-cpus 4)
  partime solve lorenz --t-end 0.64 --slices 4 --fine rk4:0.001 --coarse rk4:0.01 \
      --backend ray --address "$ADDR"
  launch/ray.sh stop
USAGE
}

caller_cluster_flag="${RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER:-}"
state_dir="${PARTIME_RAY_DIR:-/tmp/partime-ray-$(id -un)}"
timeout=60
# Ray >= 2.5x turns token auth on once any local ray.init() has left ~/.ray/auth_token, and a
# client without the token is then refused; say which mode this cluster uses.
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"

# free_port: an unused TCP port on loopback, so that several clusters can share a machine.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_ray NAME ARGS...: run `ray start --block ARGS` in its own session, record its pid and
# wait for "Ray runtime started"; --block makes it the parent that tears its children down.
start_ray() {
    local name="$1"
    shift
    local log="$state_dir/$name.log" pid_file="$state_dir/$name.pid"
    [[ -e "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null \
        && die "a Ray $name started from $state_dir is already running (pid $(cat "$pid_file")); run 'launch/ray.sh stop --state-dir $state_dir' first"
    command -v ray >/dev/null || die "'ray' not found; pip install 'partime[ray]'"
    export_threads 1
    : >"$log"
    setsid ray start --block --disable-usage-stats --temp-dir "$state_dir" "$@" >"$log" 2>&1 &
    local pid=$!
    echo "$pid" >"$pid_file"
    local waited=0
    until grep -q "Ray runtime started" "$log"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file"
            tail -n 20 "$log" >&2
            die "ray $name exited during start-up (log: $log)" 1
        fi
        (( waited++ < timeout * 5 )) || { stop_all 5; die "ray $name not up after ${timeout}s (log: $log)" 1; }
        sleep 0.2
    done
}

# stop_all GRACE: SIGTERM each recorded `ray start --block`, SIGKILL its process group after
# GRACE seconds; pid files whose process is gone or is not Ray (pid reused) are just removed.
stop_all() {
    local grace="$1" pid_file pid waited
    shopt -s nullglob
    for pid_file in "$state_dir"/*.pid; do
        pid="$(cat "$pid_file")"
        if [[ "$(ps -o args= -p "$pid" 2>/dev/null)" == *"ray start"* ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            waited=0
            while kill -0 "$pid" 2>/dev/null && (( waited++ < grace * 5 )); do sleep 0.2; done
            kill -KILL -- "-$pid" 2>/dev/null || true
            echo "stopped $(basename "$pid_file" .pid) (pid $pid)" >&2
        fi
        rm -f "$pid_file"
    done
    rm -f "$state_dir/address"
}

(( $# )) || { usage >&2; exit 2; }
sub="$1"
shift
ip=127.0.0.1  # the head's default; a worker lets Ray find its address unless given --ip
ip_given=""
port=6379
address=""
ray_args=()
while (( $# )); do
    case "$1" in
        --ip) need_value "$1" $#; ip="$2"; ip_given=1; shift 2 ;;
        --port) need_value "$1" $#; port="$2"; shift 2 ;;
        --address) need_value "$1" $#; address="$2"; shift 2 ;;
        --num-cpus | --num-gpus) need_value "$1" $#; need_posint "$1" "$2"; ray_args+=("$1" "$2"); shift 2 ;;
        --state-dir) need_value "$1" $#; state_dir="$2"; shift 2 ;;
        --timeout) need_value "$1" $#; need_posint "$1" "$2"; timeout="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; ray_args+=("$@"); break ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if [[ "$ip" == 127.* ]]; then
    # Without this, Ray replaces a loopback address by the node's public one.
    export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
fi
(( ${#state_dir} <= 40 )) || die "--state-dir '$state_dir' is longer than 40 characters (Ray's unix socket paths would overflow)"
mkdir -p "$state_dir"

case "$sub" in
    head)
        need_posint "--port" "$port"
        start_ray head --head --node-ip-address "$ip" --port "$port" --include-dashboard false \
            --dashboard-port "$(free_port)" --ray-client-server-port "$(free_port)" "${ray_args[@]}"
        echo "$ip:$port" | tee "$state_dir/address"
        [[ "$ip" != 127.* || "$caller_cluster_flag" == 0 ]] || echo "ray.sh: loopback head: run the driver with" \
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (else Ray dials the node's public address)" >&2
        ;;
    worker)
        [[ "$address" =~ ^[^:]+:[0-9]+$ ]] || die "worker needs --address IP:PORT of the head, got '$address'"
        start_ray "worker-$(hostname -s)" --address "$address" ${ip_given:+--node-ip-address "$ip"} \
            "${ray_args[@]}"
        ;;
    stop) stop_all "$timeout" ;;
    -h | --help) usage ;;
    *) die "unknown subcommand '$sub' (head, worker or stop)" ;;
esac
