#!/usr/bin/env bash
# A single-node Slurm on this machine, for the scheduler tests and for trying the job
# scripts: its own munge key and socket, a slurm.conf for this host with its real CPU
# count, and its own state, spool and log directories, all under one directory; the
# daemons are started and stopped by pid, on ports other than Slurm's defaults, so a
# site's Slurm or munge on the same machine is never touched.
#
#   scripts/slurm-local.sh start    # idempotent: does nothing if it is already up
#   scripts/slurm-local.sh status   # sinfo of the local cluster, exit 1 if it is not up
#   scripts/slurm-local.sh env      # prints `export SLURM_CONF=...` (eval it to use sbatch)
#   scripts/slurm-local.sh stop     # cancels its jobs, stops its daemons; idempotent
#
# Needs the Debian packages slurm-wlm and munge (scripts/setup.sh installs them) and root:
# slurmd starts job steps as the submitting user. Settings (environment):
#   BINFLOW_SLURM_DIR   where everything lives   [/tmp/binflow-slurm-$UID]
#   BINFLOW_SLURM_PORT  slurmctld port; slurmd uses the next one   [16817]
# The settings it shares with scripts/cluster-local.sh, and why, are in scripts/slurm-conf.sh;
# requeued jobs wait cred_expire = 10 s (default 120) before they start again.
set -euo pipefail

dir=${BINFLOW_SLURM_DIR:-/tmp/binflow-slurm-$(id -u)}
port=${BINFLOW_SLURM_PORT:-16817}
conf=$dir/etc/slurm.conf
source "$(dirname "${BASH_SOURCE[0]}")/slurm-conf.sh"
export SLURM_CONF=$conf

say() { echo "slurm-local: $*"; }
die() {
  echo "slurm-local: error: $*" >&2
  exit 1
}

# pid from a pid file, if that process is alive and is the program we expect.
live_pid() {
  local file=$1 program=$2 pid
  [[ -r $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/comm ]] || return 1
  [[ $(</proc/"$pid"/comm) == "$program" ]] || return 1
  echo "$pid"
}

stop_pid() {
  local file=$1 program=$2 pid i
  pid=$(live_pid "$file" "$program") || {
    rm -f "$file"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ -d /proc/$pid ]] || break
    sleep 0.1
  done
  if [[ -d /proc/$pid ]]; then
    say "$program ($pid) ignored SIGTERM for 10 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  say "stopped $program ($pid)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -n 1; }

running() {
  live_pid "$dir/run/munged.pid" munged >/dev/null &&
    live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null &&
    live_pid "$dir/run/slurmd.pid" slurmd >/dev/null
}

write_conf() {
  local host cpus real sockets cores threads mem node
  host=$(hostname -s)
  cpus=$(nproc)
  # slurmd -C reports the hardware as slurmd will see it; the node line must not claim
  # more than that or slurmd marks the node invalid.
  real=$(slurmd -C 2>/dev/null | head -n 1)
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$real")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$real")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$real")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$real")
  [[ -n $mem ]] || mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  mem=$((mem * 9 / 10)) # a bit under the real memory, or slurmd drains the node
  node="NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN"
  # The socket/core/thread layout only when it accounts for exactly the CPUs we may use
  # (a cpuset smaller than the machine makes nproc the truth).
  if [[ -n $sockets && -n $cores && -n $threads ]] && ((sockets * cores * threads == cpus)); then
    node="NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN"
  fi
  local user
  user=$(id -un)
  cat >"$conf" <<EOF
# Written by binflow scripts/slurm-local.sh for a single-node test cluster on $host.
ClusterName=binflow-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/run/munge.socket,cred_expire=10
SlurmUser=$user
SlurmdUser=$user
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/etc/plugstack.conf
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
$(slurm_test_settings)
$node
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  if live_pid "$dir/run/munged.pid" munged >/dev/null; then return 0; fi
  if [[ ! -s $dir/munge/munge.key ]]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$dir/munge/munge.key"
  fi
  munged --key-file="$dir/munge/munge.key" --socket="$dir/run/munge.socket" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" ||
    die "munged did not start; its log: $(tail -n 3 "$dir/log/munged.log" 2>/dev/null)"
  munge -n -S "$dir/run/munge.socket" | unmunge -S "$dir/run/munge.socket" >/dev/null ||
    die "munge credentials do not round-trip through $dir/run/munge.socket"
  say "munged up ($(<"$dir/run/munged.pid"))"
}

start() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
    die "slurmctld, slurmd or munged not found: install the Debian packages slurm-wlm and munge (scripts/setup.sh does)"
  [[ $(id -u) -eq 0 ]] || say "warning: not root; slurmd can start jobs only for $(id -un) and may refuse to run"
  if running && [[ $(node_state) == idle* || $(node_state) == mix* || $(node_state) == alloc* ]]; then
    say "already running in $dir (node $(node_state))"
    return 0
  fi
  stop_daemons
  mkdir -p "$dir"/{etc,munge,run,log,state,spool}
  chmod 0755 "$dir" "$dir/run" "$dir/log"
  chmod 0700 "$dir/munge" "$dir/state" "$dir/spool"
  for p in "$port" $((port + 1)); do
    ! port_in_use "$p" || die "port $p is in use (another Slurm?); set BINFLOW_SLURM_PORT"
  done
  write_conf
  : >"$dir/etc/plugstack.conf"
  start_munge
  # -c: start from a clean state; the test cluster keeps no jobs across restarts.
  slurmctld -c -f "$conf" || die "slurmctld did not start; its log: $(tail -n 5 "$dir/log/slurmctld.log")"
  local i
  for ((i = 0; i < 100; i++)); do
    scontrol ping 2>/dev/null | grep -q UP && break
    sleep 0.2
  done
  scontrol ping 2>/dev/null | grep -q UP || die "slurmctld does not answer; its log: $(tail -n 5 "$dir/log/slurmctld.log")"
  slurmd -f "$conf" || die "slurmd did not start; its log: $(tail -n 5 "$dir/log/slurmd.log")"
  for ((i = 0; i < 150; i++)); do
    [[ $(node_state) == idle* ]] && break
    sleep 0.2
  done
  if [[ $(node_state) != idle* ]]; then
    sinfo -N -l >&2 || true
    scontrol show node >&2 || true
    die "the node is '$(node_state)', not idle, after 30 s; logs in $dir/log"
  fi
  say "up in $dir: $(sinfo -h -N -o 'node %N, %c CPUs (%z), %m MB, partition %P, %t')"
  say "use it with: export SLURM_CONF=$conf"
}

stop_daemons() {
  stop_pid "$dir/run/slurmd.pid" slurmd
  stop_pid "$dir/run/slurmctld.pid" slurmctld
  stop_pid "$dir/run/munged.pid" munged
}

stop() {
  if live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null; then
    local jobs i
    jobs=$(squeue -h -o '%i' 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        [[ -z $(squeue -h -o '%i' 2>/dev/null) ]] && break
        sleep 0.2
      done
      say "cancelled jobs: $(echo $jobs)"
    fi
  fi
  stop_daemons
}

status() {
  running || {
    say "not running (directory $dir)"
    return 1
  }
  sinfo -N -o '%N %t %c %z %m %P'
  squeue
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *)
    echo "usage: $0 start|stop|restart|status|env" >&2
    exit 2
    ;;
esac
