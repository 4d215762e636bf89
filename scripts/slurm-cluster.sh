#!/usr/bin/env bash
# Throw-away one-node Slurm cluster on this machine, for tests of `ecgbench submit` against a real
# Slurm (jobs go through `submitit`, which shells out to sbatch/squeue/scancel/sacct).
#
#   bash scripts/slurm-cluster.sh start    install (if needed), configure and start munged, slurmctld, slurmd;
#                                          wait until the node is idle. Idempotent; exit 0 when jobs are accepted.
#   bash scripts/slurm-cluster.sh stop     cancel all jobs, stop the daemons this script started. Never fails.
#   bash scripts/slurm-cluster.sh status   exit 0 when the cluster accepts jobs, else 1.
#
# Needs root (daemons run as root, SlurmUser=root) and a Debian/Ubuntu apt when slurm is not installed:
# `slurm-wlm` and `munge` are installed with apt-get (policy-rc.d blocks their init scripts meanwhile).
# Works in containers without systemd or cgroups: proctrack/linuxproc, task/none, no accounting.
#
# Layout: everything lives under $ECGBENCH_SLURM_DIR (default /tmp/ecgbench-slurm):
#   slurm.conf, munge/ (private key, socket, pid, seed), state/ (slurmctld), spool/ (slurmd), log/, run/ (pids).
# A private munged serves a socket under that directory (slurm.conf: AuthInfo=socket=...), so a system
# munged, if any, is left alone. /etc/slurm/slurm.conf is made a symlink to $DIR/slurm.conf because that is
# the path compiled into Debian's slurm: sbatch/squeue/scancel/sinfo/sacct then work from any later process
# (submitit, pytest workers) with no extra environment. An existing /etc/slurm/slurm.conf that this script
# did not write is never replaced (start fails) unless ECGBENCH_SLURM_OVERWRITE=1 (then it is backed up
# and restored by `stop`; `stop` removes the symlink). With ECGBENCH_SLURM_LINK_CONF=0 nothing under /etc
# is touched; callers must then `export SLURM_CONF=$ECGBENCH_SLURM_DIR/slurm.conf` (Slurm's clients and
# daemons honour that variable; checked with sinfo/sbatch).
#
# Scheduling notes: one node = this host with the CPUs/memory `slurmd -C` reports, partition `debug`
# (Default=YES, MaxTime=INFINITE), select/cons_tres with CR_CPU (each CPU/thread is a slot, memory is not
# consumed, so two 1-CPU jobs run at once on 2 cores; --mem up to the node's RealMemory is accepted).
# Short timeouts (KillWait=2) end a cancelled job within seconds; sched_interval=1 / bf_interval=1 start
# queued and dependent jobs about a second after they become eligible; kill_invalid_depend cancels a job
# whose dependency can never be met (e.g. afterok on a failed job) instead of leaving it pending forever.
# Accounting is off, so `sacct` fails ("Slurm accounting storage is disabled"); submitit then logs
# "Bypassing sacct error ..., status may be inaccurate" at each status poll and relies on result files:
# job.result() works for functions that return or raise, but waits forever for a job that ends without a
# result file (scancel, a cancelled dependant, a hard kill), so tests should bound such waits (e.g. poll
# job.done() with a deadline and check `squeue -h -j ID`).
# Batch jobs start within ~1 s of submission (scheduler tick); jobs asking for more CPUs or memory than
# the node has, or an unknown partition or GPUs, are rejected by sbatch (EnforcePartLimits=ALL).
#
# Env knobs:
#   ECGBENCH_SLURM_DIR        base directory (default /tmp/ecgbench-slurm)
#   ECGBENCH_SLURM_TIMEOUT    seconds start waits for the node to become idle (default 30)
#   ECGBENCH_SLURM_PARTITION  partition name (default debug)
#   ECGBENCH_SLURM_CTLD_PORT  slurmctld port (default 6817); ECGBENCH_SLURM_SLURMD_PORT slurmd port (default 6818)
#   ECGBENCH_SLURM_LINK_CONF  1 (default): symlink /etc/slurm/slurm.conf to the config; 0: don't touch /etc
#   ECGBENCH_SLURM_OVERWRITE  1: back up and replace a foreign /etc/slurm/slurm.conf (default 0: refuse)
#   ECGBENCH_SLURM_NO_INSTALL 1: never run apt-get (fail if the daemons are missing)
set -uo pipefail

DIR="${ECGBENCH_SLURM_DIR:-/tmp/ecgbench-slurm}"
TIMEOUT="${ECGBENCH_SLURM_TIMEOUT:-30}"
PARTITION="${ECGBENCH_SLURM_PARTITION:-debug}"
CTLD_PORT="${ECGBENCH_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${ECGBENCH_SLURM_SLURMD_PORT:-6818}"
LINK_CONF="${ECGBENCH_SLURM_LINK_CONF:-1}"
OVERWRITE="${ECGBENCH_SLURM_OVERWRITE:-0}"
NO_INSTALL="${ECGBENCH_SLURM_NO_INSTALL:-0}"

ETC_CONF=/etc/slurm/slurm.conf
CONF="$DIR/slurm.conf"
MARKER="# written by ecgbench scripts/slurm-cluster.sh"
export SLURM_CONF="$CONF"   # for this script's own client calls and the daemons it starts
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "slurm-cluster: $*" >&2; }
STARTED=0  # set once start has launched daemons: a failing start then stops them again (logs stay)
die() {
  log "ERROR: $*"
  if [ "$STARTED" = 1 ]; then stop_daemons quiet; log "stopped the daemons this start launched; logs are in $DIR/log"; fi
  exit 1
}

pid_alive() {  # pid_alive FILE -> 0 when the pid in FILE is a live process
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

node_name() { hostname -s; }

node_state() {  # prints the node's state (e.g. idle, mixed, allocated, idle*, down*) or nothing
  timeout 10 sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n1
}

cluster_ok() {
  pid_alive "$DIR/run/munged.pid" && pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid" || return 1
  case "$(node_state)" in
    idle|mixed|allocated|completing|idle+*|mixed+*|allocated+*) return 0 ;;  # '*' suffix = not responding
    *) return 1 ;;
  esac
}

tail_log() {  # tail_log NAME
  local f="$DIR/log/$1.log"
  if [ -s "$f" ]; then
    log "---- last lines of $f ----"
    tail -n 25 "$f" >&2
    log "----"
  else
    log "($f is empty or missing)"
  fi
}

install_packages() {
  local missing=()
  for b in slurmctld slurmd munged sinfo sbatch; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$NO_INSTALL" = 1 ] && die "missing ${missing[*]} and ECGBENCH_SLURM_NO_INSTALL=1"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install slurm-wlm/munge"
  log "installing slurm-wlm and munge with apt-get (missing: ${missing[*]})"
  # Keep the packages' init scripts from starting system daemons (they would fail without a config, or
  # fight ours for the ports); leave an existing policy-rc.d alone.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local rc=0
  apt-get update -q >/dev/null || rc=$?
  if [ "$rc" -eq 0 ]; then
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null || rc=$?
  fi
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing slurm-wlm munge"
  for b in slurmctld slurmd munged sinfo sbatch; do command -v "$b" >/dev/null 2>&1 || die "$b still missing after apt-get"; done
}

write_conf() {
  local host hw
  host="$(node_name)"
  # First line of `slurmd -C`: NodeName=... CPUs=... Boards=... SocketsPerBoard=... CoresPerSocket=...
  # ThreadsPerCore=... RealMemory=...; drop UpTime and replace NodeName by the short hostname.
  hw="$(slurmd -C 2>/dev/null | head -n1 | sed -e 's/ UpTime=[^ ]*//' -e 's/^NodeName=[^ ]* //')"
  [[ "$hw" == *CPUs=*RealMemory=* ]] || die "could not read CPUs/RealMemory from 'slurmd -C' (got: $hw)"
  cat >"$CONF.tmp" <<EOF
$MARKER ($(date -u +%FT%TZ)); do not edit, rerun start.
ClusterName=ecgbench
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=0,batch_sched_delay=0
DependencyParameters=kill_invalid_depend
EnforcePartLimits=ALL
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=5
KillWait=2
UnkillableStepTimeout=10
InactiveLimit=0
MinJobAge=300
Waittime=0
NodeName=$host NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv -f "$CONF.tmp" "$CONF"
}

link_conf() {
  [ "$LINK_CONF" = 1 ] || { log "ECGBENCH_SLURM_LINK_CONF=0: export SLURM_CONF=$CONF in every process that runs Slurm commands"; return 0; }
  mkdir -p /etc/slurm
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$CONF" ]; then return 0; fi
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    if ! grep -qF "$MARKER" "$ETC_CONF" 2>/dev/null; then
      [ "$OVERWRITE" = 1 ] || die "$ETC_CONF exists and was not written by this script; set ECGBENCH_SLURM_OVERWRITE=1 to back it up and replace it, or ECGBENCH_SLURM_LINK_CONF=0 and use SLURM_CONF"
      mv -f "$ETC_CONF" "$ETC_CONF.ecgbench-backup" || die "cannot back up $ETC_CONF"
      log "backed up $ETC_CONF to $ETC_CONF.ecgbench-backup"
    fi
  fi
  ln -sfn "$CONF" "$ETC_CONF" || die "cannot link $ETC_CONF -> $CONF"
}

start_munged() {
  local key="$DIR/munge/munge.key"
  if [ ! -s "$key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile="$key" --force >/dev/null 2>&1 || true
    fi
    [ -s "$key" ] || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none || die "cannot create $key"
  fi
  chmod 400 "$key"
  if pid_alive "$DIR/run/munged.pid"; then return 0; fi
  rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
  # --force: accept /tmp-based paths that munged's strict permission checks would otherwise refuse.
  munged --force --key-file="$key" --socket="$DIR/munge/munge.socket" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" >>"$DIR/log/munged.log" 2>&1 \
    || { tail_log munged; die "munged failed to start"; }
  local i
  for i in $(seq 1 50); do [ -S "$DIR/munge/munge.socket" ] && pid_alive "$DIR/run/munged.pid" && return 0; sleep 0.1; done
  tail_log munged; die "munged did not come up (no socket $DIR/munge/munge.socket)"
}

start_daemon() {  # start_daemon slurmctld|slurmd
  local name="$1"
  if pid_alive "$DIR/run/$name.pid"; then return 0; fi
  rm -f "$DIR/run/$name.pid"
  "$name" -f "$CONF" >>"$DIR/log/$name.out" 2>&1 || {
    cat "$DIR/log/$name.out" >&2 2>/dev/null; tail_log "$name"; die "$name failed to start"; }
  local i
  for i in $(seq 1 50); do pid_alive "$DIR/run/$name.pid" && return 0; sleep 0.1; done
  cat "$DIR/log/$name.out" >&2 2>/dev/null; tail_log "$name"; die "$name exited right after starting"
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root)"
  if [ -s "$CONF" ] && cluster_ok; then
    [ "$LINK_CONF" = 1 ] && link_conf
    log "already running ($DIR, node $(node_name) $(node_state))"; return 0
  fi
  install_packages
  # Anything half-started by an earlier run is stopped before a clean start.
  stop_daemons quiet
  mkdir -p "$DIR"/{munge,state,spool,log,run}
  chmod 755 "$DIR/munge"   # socket must be reachable by any user; the key itself is 0400
  chmod 755 "$DIR"
  write_conf
  link_conf
  STARTED=1
  start_munged
  munge -n --socket="$DIR/munge/munge.socket" 2>/dev/null | unmunge --socket="$DIR/munge/munge.socket" >/dev/null 2>&1 \
    || { tail_log munged; die "munge round trip failed"; }
  # Forget the saved node state (jobs and the job-id counter are kept): the node then shows "unknown"
  # until this slurmd registers, so the wait below cannot be fooled by an "idle" left from the last run.
  rm -f "$DIR/state/node_state" "$DIR/state/node_state.old"
  start_daemon slurmctld
  start_daemon slurmd
  local t0=$SECONDS state="" resumed=0
  while [ $((SECONDS - t0)) -lt "$TIMEOUT" ]; do
    state="$(node_state)"
    case "$state" in
      idle|mixed|allocated|completing) log "cluster up: node $(node_name) $state, partition $PARTITION, config $CONF"; return 0 ;;
      drain*|down|*drain*|inval*|fail*)
        # e.g. left DOWN/DRAINED in saved state by an earlier run: return it to service once.
        if [ "$resumed" = 0 ]; then scontrol update nodename="$(node_name)" state=resume >/dev/null 2>&1; resumed=1; fi ;;
    esac
    pid_alive "$DIR/run/slurmctld.pid" || { tail_log slurmctld; die "slurmctld died"; }
    pid_alive "$DIR/run/slurmd.pid" || { tail_log slurmd; die "slurmd died"; }
    sleep 0.5
  done
  log "node $(node_name) not idle after ${TIMEOUT}s (state: '${state:-unknown}'; $(timeout 5 sinfo -h -N -o '%N %T %E' 2>&1 | head -n3))"
  tail_log slurmctld; tail_log slurmd
  die "cluster did not become ready"
}

stop_daemons() {  # TERM slurmd, slurmctld, munged together (each takes 1-2 s to exit), wait up to 10 s, then KILL
  local name f pid i names=() pids=()
  for name in slurmd slurmctld munged; do
    f="$DIR/run/$name.pid"
    if pid_alive "$f"; then
      pid="$(cat "$f")"; kill -TERM "$pid" 2>/dev/null; names+=("$name"); pids+=("$pid")
    fi
    rm -f "$f"
  done
  [ "${#pids[@]}" -eq 0 ] && return 0
  for i in $(seq 1 100); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.1; done  # kill -0: ok if any lives
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      log "${names[$i]} (${pids[$i]}) ignored SIGTERM for 10 s; killing"; kill -KILL "${pids[$i]}" 2>/dev/null
    fi
  done
  [ "${1:-}" = quiet ] || log "stopped ${names[*]} (pids ${pids[*]})"
}

cmd_stop() {
  if [ -s "$CONF" ] && pid_alive "$DIR/run/slurmctld.pid" && command -v scancel >/dev/null 2>&1; then
    timeout 10 scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
    if [ "$(id -u)" = 0 ]; then  # root may cancel every user's jobs
      timeout 10 scancel --full --state=PENDING >/dev/null 2>&1
      timeout 10 scancel --full --state=RUNNING >/dev/null 2>&1
    fi
    local i
    for i in $(seq 1 30); do  # let slurmd tear down the job steps (KillWait=2)
      [ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING,CONFIGURING -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  local ours=0 left=""
  pid_alive "$DIR/run/slurmd.pid" && ours=1
  stop_daemons
  # Steps of cancelled jobs normally exit with slurmd; kill any that outlived the slurmd we just stopped.
  [ "$ours" = 1 ] && left="$(pgrep -x slurmstepd 2>/dev/null | tr '\n' ' ')"
  if [ -n "$left" ]; then log "killing leftover slurmstepd: $left"; kill -KILL $left 2>/dev/null || true; fi
  if [ "$LINK_CONF" = 1 ] && [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$CONF" ]; then
    rm -f "$ETC_CONF"
    if [ -e "$ETC_CONF.ecgbench-backup" ]; then mv -f "$ETC_CONF.ecgbench-backup" "$ETC_CONF"; log "restored $ETC_CONF"; fi
  fi
  return 0
}

cmd_status() {
  if [ -s "$CONF" ] && cluster_ok; then
    echo "running: node $(node_name) $(node_state), config $CONF"; return 0
  fi
  echo "not running ($DIR)"; return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop; exit 0 ;;
  status) cmd_status ;;
  *) echo "usage: bash scripts/slurm-cluster.sh start|stop|status   (see the header for env knobs)" >&2; exit 2 ;;
esac
