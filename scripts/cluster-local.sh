#!/usr/bin/env bash
# A three-node cluster on this machine, for the multi-node tests: each node is a process
# holding its own UTS, network and mount namespaces (own hostname node1..nodeN, own
# /etc/hosts) and its own cpuset cgroup, so that MPI sees separate hosts and binflow sees
# each node's own cores. A "switch" namespace holds a bridge with one veth pair per node on a
# private /24 that exists only inside these namespaces: the machine's own network namespace
# is never touched, the nodes have no route anywhere else, and no traffic leaves them but
# over that bridge and their loopback. The file system is the machine's, shared by all nodes.
#
#   scripts/cluster-local.sh up             # idempotent; about 1 s
#   scripts/cluster-local.sh run NODE CMD   # CMD inside NODE (namespaces, cpuset, this cwd)
#   scripts/cluster-local.sh env            # exports for mpirun (and Slurm) inside the nodes
#   scripts/cluster-local.sh status         # the nodes, their cpus and addresses; exit 1 if down
#   scripts/cluster-local.sh slurm-start    # munged here, slurmctld in node1, slurmd per node
#   scripts/cluster-local.sh slurm-stop     # cancels the jobs, stops the daemons
#   scripts/cluster-local.sh down           # stops everything by pid, removes all; idempotent
#
# mpirun runs inside a node (`run node1 mpirun --hostfile $DIR/hostfile ...`) and starts its
# remote daemons through the rsh agent $DIR/bin/rsh-agent (OMPI_MCA_plm_rsh_agent, in `env`),
# which enters the target node: no sshd. Slurm clients (sbatch, srun, binflow submit) also
# run inside a node. Needs root, util-linux (unshare, nsenter), iproute2 and a writable
# cgroup v1 cpuset hierarchy; exits 77 with the reason where namespaces are refused.
# Settings (environment):
#   BINFLOW_CLUSTER_DIR   state, logs, Slurm; removed by down    [/tmp/binflow-cluster-$UID]
#   BINFLOW_CLUSTER_NET   the first three octets of the /24      [10.213.7]
#   BINFLOW_CLUSTER_CPUS  one cpuset per node                    [all, upper half, lower half]
#   BINFLOW_CLUSTER_PORT  slurmctld port; slurmd the next one    [16877]
set -euo pipefail

dir=${BINFLOW_CLUSTER_DIR:-/tmp/binflow-cluster-$(id -u)}
net=${BINFLOW_CLUSTER_NET:-10.213.7}
port=${BINFLOW_CLUSTER_PORT:-16877}
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
slurm=$dir/slurm
export SLURM_CONF=$slurm/etc/slurm.conf
source "$(dirname "${BASH_SOURCE[0]}")/slurm-conf.sh"

say() { echo "cluster-local: $*"; }
die() {
  echo "cluster-local: error: $*" >&2
  exit 1
}

# --- processes ------------------------------------------------------------------------

# pid from a pid file, if that process is alive and runs the program we expect.
live_pid() {
  local file=$1 program=$2 pid
  [[ -r $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  [[ $(</proc/"$pid"/comm) == "$program" ]] || return 1
  echo "$pid"
}

# Whether a process runs: a zombie has let go of its namespaces and files; whoever adopted
# it (init, a subreaper) may take a while to reap it.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# SIGTERM, up to 10 s, then SIGKILL.
stop_process() {
  local pid=$1 what=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
  say "$what ($pid) ignored SIGTERM for 10 s, killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_pid_file() {
  local file=$1 program=$2 pid
  if pid=$(live_pid "$file" "$program"); then
    stop_process "$pid" "$program"
    say "stopped $program ($pid)"
  fi
  rm -f "$file"
}

# --- the nodes --------------------------------------------------------------------------

# The cpuset cgroup this script runs in: the nodes' cgroups are made below it.
cpuset_root() {
  local path
  path=$(awk -F: '$2 == "cpuset" { print $3 }' /proc/self/cgroup)
  echo "/sys/fs/cgroup/cpuset${path%/}"
}

cgroup_dir() { echo "$(cpuset_root)/binflow-cluster-$(id -u)-$(basename "$dir")"; }

# A CPU list as the kernel writes it (0-3,8), one CPU a line.
expand_cpus() {
  local part
  for part in ${1//,/ }; do
    if [[ $part == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
  done
}

# The CPUs this process may use.
allowed_cpus() { expand_cpus "$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)"; }

# The default cpusets: node1 has every CPU, node2 the upper half, node3 the lower half, so
# that node budgets differ (2, 1, 1 on two cores) and the nodes overlap as real ones cannot.
default_cpusets() {
  local all n half
  mapfile -t all < <(allowed_cpus)
  n=${#all[@]}
  half=$(((n + 1) / 2))
  local lower=${all[0]} upper=${all[n - half]}
  ((half > 1)) && lower="${all[0]}-${all[half - 1]}"
  ((half > 1)) && upper="${all[n - half]}-${all[n - 1]}"
  echo "${all[0]}-${all[n - 1]} $upper $lower" | sed 's/\b\([0-9]\+\)-\1\b/\1/g'
}

nodes() {
  local f
  for f in "$dir"/nodes/*.pid; do [[ -e $f ]] && basename "$f" .pid; done | sort -V
}

holder() {
  local pid
  pid=$(live_pid "$dir/nodes/$1.pid" sleep) || return 1
  echo "$pid"
}

running() {
  local n found=0
  [[ -d $dir/nodes ]] || return 1
  live_pid "$dir/switch.pid" sleep >/dev/null || return 1
  for n in $(nodes); do
    holder "$n" >/dev/null || return 1
    found=1
  done
  ((found))
}

# A process holding new namespaces (no --fork: unshare(2) applies to unshare itself, which
# then executes sleep, so the pid we get is the holder's).
start_holder() {
  unshare "$@" sleep infinity </dev/null >/dev/null 2>"$dir/unshare.err" &
  local pid=$! i
  for ((i = 0; i < 200; i++)); do
    if [[ $(readlink /proc/$pid/ns/net 2>/dev/null) != "$(readlink /proc/self/ns/net)" &&
      $(cat /proc/$pid/comm 2>/dev/null) == sleep ]]; then
      echo "$pid"
      return 0
    fi
    [[ -d /proc/$pid ]] || break
    sleep 0.01
  done
  local why
  why=$(cat "$dir/unshare.err" 2>/dev/null)
  if [[ $why == *"Operation not permitted"* ]]; then
    echo "cluster-local: skip: namespaces are refused here ($why)" >&2
    exit 77
  fi
  die "unshare $* did not start a namespace holder: $why"
}

in_switch() { nsenter -t "$(live_pid "$dir/switch.pid" sleep)" --net -- "$@"; }
in_node() {
  local pid
  pid=$(holder "$1") || die "no node $1 (is the cluster up? $self up)"
  shift
  nsenter -t "$pid" --uts --net --mount -- "$@"
}

write_hosts() {
  local i=1 n
  {
    echo "127.0.0.1 localhost"
    for n in "$@"; do
      echo "$net.$i $n"
      i=$((i + 1))
    done
  } >"$dir/hosts"
}

make_cgroups() {
  local root cg mems
  root=$(cpuset_root)
  [[ -w $root/cpuset.cpus ]] || die "no writable cgroup v1 cpuset hierarchy at $root"
  cg=$(cgroup_dir)
  mems=$(<"$root/cpuset.effective_mems")
  mkdir -p "$cg"
  cat "$root/cpuset.effective_cpus" >"$cg/cpuset.cpus"
  echo "$mems" >"$cg/cpuset.mems"
  echo "$cg" >"$dir/cgroup"
}

add_node() {
  local name=$1 index=$2 cpus=$3 pid cg
  pid=$(start_holder --uts --net --mount)
  echo "$pid" >"$dir/nodes/$name.pid"
  cg=$(<"$dir/cgroup")/$name
  mkdir -p "$cg"
  echo "$cpus" >"$cg/cpuset.cpus" || die "cpuset $cpus for $name refused"
  cat "$(<"$dir/cgroup")/cpuset.mems" >"$cg/cpuset.mems"
  echo "$pid" >"$cg/cgroup.procs"
  echo "$cpus" >"$dir/nodes/$name.cpus"
  in_node "$name" hostname "$name"
  in_node "$name" mount --bind "$dir/hosts" /etc/hosts
  # The node's local disk: $dir/local/NAME, seen inside the node (only) as $dir/node.
  mkdir -p "$dir/local/$name" "$dir/node"
  in_node "$name" mount --bind "$dir/local/$name" "$dir/node"
  in_switch ip link add "v$name" type veth peer name eth0 netns "$pid"
  in_switch ip link set "v$name" master br0 up
  in_node "$name" ip link set lo up
  in_node "$name" ip addr add "$net.$index/24" dev eth0
  in_node "$name" ip link set eth0 up
}

write_agent() {
  mkdir -p "$dir/bin"
  # Open MPI runs `AGENT HOST COMMAND...` as it would ssh: the words form a shell command.
  cat >"$dir/bin/rsh-agent" <<EOF
#!/bin/sh
# Open MPI's rsh agent for the cluster in $dir (written by $self).
BINFLOW_CLUSTER_DIR='$dir' BINFLOW_CLUSTER_NET='$net' exec '$self' agent "\$@"
EOF
  chmod +x "$dir/bin/rsh-agent"
}

write_hostfile() {
  local n
  : >"$dir/hostfile"
  for n in $(nodes); do
    echo "$n slots=$(expand_cpus "$(<"$dir/nodes/$n.cpus")" | wc -l)" >>"$dir/hostfile"
  done
}

up() {
  [[ $(id -u) -eq 0 ]] || die "needs root (namespaces, cgroups, veth pairs)"
  for p in unshare nsenter ip; do command -v $p >/dev/null || die "$p not found (util-linux, iproute2)"; done
  if running; then
    say "already up in $dir: $(nodes | tr '\n' ' ')"
    return 0
  fi
  if [[ -d $dir && ! -e $dir/.binflow-cluster && -n $(ls -A "$dir") ]]; then
    die "$dir exists and is not a cluster's directory; set BINFLOW_CLUSTER_DIR to another"
  fi
  down >/dev/null
  # A bring-up that fails half-way (or is refused: exit 77) leaves nothing behind.
  trap 'status=$?; ((status == 0)) || down >/dev/null 2>&1' EXIT
  local cpusets
  read -r -a cpusets <<<"${BINFLOW_CLUSTER_CPUS:-$(default_cpusets)}"
  mkdir -p "$dir/nodes"
  : >"$dir/.binflow-cluster" # down removes only a directory that has it
  local names=() i
  for ((i = 1; i <= ${#cpusets[@]}; i++)); do names+=("node$i"); done
  write_hosts "${names[@]}"
  make_cgroups
  local sw
  sw=$(start_holder --net)
  echo "$sw" >"$dir/switch.pid"
  in_switch ip link add br0 type bridge
  in_switch ip link set br0 up
  for ((i = 1; i <= ${#cpusets[@]}; i++)); do add_node "node$i" "$i" "${cpusets[i - 1]}"; done
  write_agent
  write_hostfile
  say "up in $dir: $(for n in $(nodes); do printf '%s (cpus %s, %s) ' "$n" "$(<"$dir/nodes/$n.cpus")" "$(grep " $n\$" "$dir/hosts" | cut -d' ' -f1)"; done)"
}

down() {
  slurm_stop >/dev/null 2>&1 || true
  local cg pid n
  cg=$(cat "$dir/cgroup" 2>/dev/null || true)
  # Whatever still runs inside a node (a job step, an orted) was started by `run` or by a
  # daemon we started there: the node's cgroup lists exactly those pids.
  if [[ -n $cg && -d $cg ]]; then
    for n in "$cg"/*/; do
      [[ -r $n/cgroup.procs ]] || continue
      for pid in $(<"$n/cgroup.procs"); do
        [[ $pid == "$(cat "$dir/nodes/$(basename "$n").pid" 2>/dev/null)" ]] && continue
        stop_process "$pid" "process in $(basename "$n")"
      done
    done
  fi
  for n in $(nodes); do stop_pid_file "$dir/nodes/$n.pid" sleep >/dev/null; done
  stop_pid_file "$dir/switch.pid" sleep >/dev/null
  if [[ -n $cg && -d $cg ]]; then
    for n in "$cg"/*/; do
      [[ -d $n ]] || continue
      for ((i = 0; i < 50; i++)); do rmdir "$n" 2>/dev/null && break; sleep 0.1; done
    done
    rmdir "$cg" 2>/dev/null || say "warning: could not remove $cg"
  fi
  if [[ -e $dir/.binflow-cluster ]]; then
    rm -rf "$dir"
    say "down ($dir removed)"
  elif [[ -d $dir ]]; then
    say "down ($dir is not a cluster's directory: left as it is)"
  else
    say "down"
  fi
}

status() {
  running || {
    say "not up (directory $dir)"
    return 1
  }
  local n
  for n in $(nodes); do
    echo "$n pid $(holder "$n") cpus $(<"$dir/nodes/$n.cpus") address $(grep " $n\$" "$dir/hosts" | cut -d' ' -f1)"
  done
  if slurm_running; then in_node node1 sinfo -N -o '%N %t %c %z %m' | sed 's/^/slurm: /' || true; fi
}

# Enters NODE: its cpuset first (nsenter does not move cgroups), then its namespaces,
# in this working directory (entering a mount namespace would leave it at /).
run_in() {
  local node=$1 pid
  shift
  pid=$(holder "$node") || die "no node $node (is the cluster up? $self up)"
  echo "$BASHPID" >"$(<"$dir/cgroup")/$node/cgroup.procs" # this (sub)shell, not its parent
  exec nsenter -t "$pid" --uts --net --mount --wd="$PWD" -- "$@"
}

# Open MPI's plm_rsh_agent: `agent HOST WORDS...`, HOST a node name or its address.
agent() {
  local host=$1 node
  shift
  node=$host
  if [[ $host == "$net".* ]]; then node=$(awk -v a="$host" '$1 == a { print $2 }' "$dir/hosts"); fi
  run_in "$node" /bin/sh -c "$*"
}

print_env() {
  # The TCP transports on the bridge only: every node has a loopback of its own, which must
  # not be mistaken for a way to reach another node.
  echo "export BINFLOW_CLUSTER_DIR=$dir OMPI_MCA_plm_rsh_agent=$dir/bin/rsh-agent" \
    "OMPI_MCA_btl_tcp_if_include=$net.0/24 OMPI_MCA_oob_tcp_if_include=$net.0/24" \
    "SLURM_CONF=$SLURM_CONF"
}

# --- Slurm on the nodes -----------------------------------------------------------------

slurm_running() {
  live_pid "$slurm/run/munged.pid" munged >/dev/null &&
    live_pid "$slurm/run/slurmctld.pid" slurmctld >/dev/null
}

# The CPUs of the machine outside a node's cpuset: slurmd sees the whole machine, and
# binding a task to one of those fails (task_g_set_affinity: Invalid argument).
outside_cpus() {
  local inside c out=()
  inside=" $(expand_cpus "$1" | tr '\n' ' ')"
  for ((c = 0; c < $(nproc --all); c++)); do
    [[ $inside == *" $c "* ]] || out+=("$c")
  done
  local IFS=,
  echo "${out[*]}"
}

write_slurm_conf() {
  local real sockets cores threads mem cpus n spec nodes_n
  real=$(slurmd -C 2>/dev/null | head -n 1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$real")
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$real")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$real")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$real")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$real")
  nodes_n=$(nodes | wc -l)
  mem=$((mem * 9 / 10 / nodes_n)) # the nodes share the machine's memory
  cat >"$SLURM_CONF" <<EOF
# Written by binflow scripts/cluster-local.sh for the test cluster in $dir.
ClusterName=binflow-cluster
SlurmctldHost=node1($net.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$slurm/run/munge.socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$slurm/state
# Spool and TmpFS on each node's local disk: the PMIx plugin takes SlurmdSpoolDir as
# written (no %n), so on a shared path two nodes' step sockets would collide.
SlurmdSpoolDir=$dir/node/slurm/spool
SlurmctldPidFile=$slurm/run/slurmctld.pid
SlurmdPidFile=$slurm/run/slurmd-%n.pid
SlurmctldLogFile=$slurm/log/slurmctld.log
SlurmdLogFile=$slurm/log/slurmd-%n.log
TmpFS=$dir/node/slurm/tmp
PlugStackConfig=$slurm/etc/plugstack.conf
JobCompType=jobcomp/none
$(slurm_test_settings)
EOF
  local i=1
  for n in $(nodes); do
    spec=$(outside_cpus "$(<"$dir/nodes/$n.cpus")")
    echo "NodeName=$n NodeAddr=$net.$i CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores" \
      "ThreadsPerCore=$threads RealMemory=$mem${spec:+ CpuSpecList=$spec} State=UNKNOWN" >>"$SLURM_CONF"
    mkdir -p "$dir/local/$n/slurm/tmp" "$dir/local/$n/slurm/spool"
    i=$((i + 1))
  done
  echo "PartitionName=cluster Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$SLURM_CONF"
}

node_states() { in_node node1 sinfo -h -N -o '%N %t' 2>/dev/null || true; }

slurm_start() {
  running || die "the cluster is not up ($self up)"
  for p in slurmctld slurmd munged; do command -v $p >/dev/null || die "$p not found: install slurm-wlm and munge (scripts/setup.sh does)"; done
  if slurm_running; then
    say "Slurm already running in $slurm"
    return 0
  fi
  mkdir -p "$slurm"/{etc,munge,run,log,state}
  chmod 0700 "$slurm/munge" "$slurm/state"
  write_slurm_conf
  : >"$slurm/etc/plugstack.conf"
  dd if=/dev/urandom of="$slurm/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$slurm/munge/munge.key"
  # munged on the machine: its socket is a path, reachable from every node's namespaces.
  munged --key-file="$slurm/munge/munge.key" --socket="$slurm/run/munge.socket" \
    --pid-file="$slurm/run/munged.pid" --log-file="$slurm/log/munged.log" \
    --seed-file="$slurm/munge/munged.seed" || die "munged did not start: $(tail -n 3 "$slurm/log/munged.log")"
  (run_in node1 slurmctld -c -f "$SLURM_CONF") || die "slurmctld did not start: $(tail -n 5 "$slurm/log/slurmctld.log")"
  local n i
  for n in $(nodes); do
    (run_in "$n" slurmd -f "$SLURM_CONF" -N "$n") || die "slurmd on $n did not start: $(tail -n 5 "$slurm/log/slurmd-$n.log" 2>/dev/null)"
  done
  local want
  want=$(nodes | wc -l)
  for ((i = 0; i < 150; i++)); do
    (($(node_states | grep -c ' idle') == want)) && break
    sleep 0.2
  done
  if (($(node_states | grep -c ' idle') != want)); then
    in_node node1 scontrol show node >&2 || true
    die "the nodes are not all idle after 30 s: $(node_states | tr '\n' ' '); logs in $slurm/log"
  fi
  say "Slurm up: $(node_states | tr '\n' ' ')"
}

slurm_stop() {
  [[ -d $slurm ]] || return 0
  local jobs i n
  if live_pid "$slurm/run/slurmctld.pid" slurmctld >/dev/null; then
    jobs=$(in_node node1 squeue -h -o '%i' 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086
      in_node node1 scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        [[ -z $(in_node node1 squeue -h -o '%i' 2>/dev/null) ]] && break
        sleep 0.2
      done
    fi
  fi
  for n in $(nodes); do stop_pid_file "$slurm/run/slurmd-$n.pid" slurmd; done
  stop_pid_file "$slurm/run/slurmctld.pid" slurmctld
  stop_pid_file "$slurm/run/munged.pid" munged
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) print_env ;;
  run)
    [[ $# -ge 3 ]] || die "usage: $0 run NODE COMMAND..."
    node=$2
    shift 2
    [[ ${1:-} == -- ]] && shift
    run_in "$node" "$@"
    ;;
  agent)
    shift
    agent "$@"
    ;;
  slurm-start) slurm_start ;;
  slurm-stop) slurm_stop ;;
  *)
    echo "usage: $0 up|down|status|env|run NODE CMD...|slurm-start|slurm-stop" >&2
    exit 2
    ;;
esac
