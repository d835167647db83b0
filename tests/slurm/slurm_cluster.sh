# shellcheck shell=bash
# Sourced helper: a private one- or two-node Slurm cluster for tests.
#
#   source tests/slurm/slurm_cluster.sh
#   slurm_start "$tmp/slurm"        # munged + slurmctld + slurmd, waits for the node to be idle
#   slurm_start "$tmp/slurm" 2      # two nodes, n1 and n2 (below)
#   trap 'slurm_stop' EXIT          # cancels our jobs, stops the daemons by their pid files
#
# Two nodes: each slurmd runs in its own UTS namespace (hostname n1 or n2) and
# mount namespace (its own TmpFS, where the PMIx plugin keeps per-node files),
# reached at 127.0.0.2 and 127.0.0.3 on a port of its own; job steps on them
# are separate hosts to Open MPI, which then talks TCP over loopback (the test
# exports OMPI_MCA_btl_tcp_if_include=lo). No address outside 127.0.0.0/8.
#
# Everything (config, munge key and socket, state, spool, logs, pid files) lives
# under the given directory; the daemons listen on free ports chosen at start
# and clients find them through SLURM_CONF (exported), so a Slurm or munge
# already running system-wide is neither used nor disturbed.
# Needs root (slurmd launches jobs as their user) and the Debian packages
# slurm-wlm and munge; without them slurm_start prints "SKIP: <reason>" and
# exits the test with 77 (CTest's SKIP_RETURN_CODE).
# Configuration as measured on Debian 12 (see /work/shared/NOTES.md): no
# systemd and no cgroups, so proctrack/linuxproc and task/none.

SLURM_TEST_DIR=""

slurm_skip() { echo "SKIP: $*"; exit 77; }

# slurm_log_tail [N]: the last N lines of the controller and node daemon logs.
slurm_log_tail() {
  local n=${1:-20} f
  for f in "$SLURM_TEST_DIR/slurmctld.log" "$SLURM_TEST_DIR"/slurmd*.log; do
    [ -f "$f" ] || continue
    echo "--- last $n lines of $f" >&2
    tail -n "$n" "$f" >&2
  done
}

_slurm_free_ports() {  # prints N free TCP ports
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

slurm_start() {
  local dir=$1 nodes=${2:-1} host cpus ctld_port slurmd_port n1_port n2_port i ngpu=32
  [ "$(id -u)" = 0 ] || slurm_skip "the Slurm test needs root (slurmd runs jobs as their user)"
  if [ "$nodes" = 2 ]; then
    unshare --uts --mount /bin/true 2> /dev/null || slurm_skip "UTS and mount namespaces are not allowed here (unshare)"
  fi
  for i in munged slurmctld slurmd sbatch srun squeue sinfo scontrol scancel python3; do
    command -v "$i" > /dev/null || slurm_skip "$i not found (install the Debian packages slurm-wlm and munge)"
  done
  [ -f /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] || ls /usr/lib/*/slurm*/mpi_pmix.so > /dev/null 2>&1 \
    || slurm_skip "Slurm's PMIx plugin (mpi_pmix.so) not found"
  mkdir -p "$dir"/{state,spool,tmp}
  SLURM_TEST_DIR=$(realpath "$dir")
  dir=$SLURM_TEST_DIR
  host=$(hostname -s)
  cpus=$(nproc)
  read -r ctld_port slurmd_port n1_port n2_port <<< "$(_slurm_free_ports 4)"

  # munge: a private key and socket (munged refuses a world-readable key).
  head -c 1024 /dev/urandom > "$dir/munge.key"
  chmod 0400 "$dir/munge.key"
  munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" --pid-file="$dir/munged.pid" \
         --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" > "$dir/munged.out" 2>&1 \
    || { cat "$dir/munged.out" "$dir/munged.log" >&2 2>/dev/null; echo "slurm_start: munged failed" >&2; return 1; }
  for i in $(seq 1 50); do [ -S "$dir/munge.sock" ] && break; sleep 0.1; done
  [ -S "$dir/munge.sock" ] || { echo "slurm_start: munged made no socket" >&2; return 1; }

  # Pretend GPUs, so that the templates' --gpus-per-node / --gpus-per-task
  # requests are granted unchanged: slurmd drops a GPU without a device file,
  # so each is a character device like /dev/null (CUDA_VISIBLE_DEVICES is set,
  # nothing opens them). Enough of them that GPUs never serialise the jobs.
  mkdir -p "$dir/dev"
  for ((i = 0; i < ngpu; i++)); do
    mknod "$dir/dev/gpu$i" c 1 3 2>/dev/null || touch "$dir/dev/gpu$i"  # a plain file: slurmd complains, counts it
  done

  # cred_expire: a requeued batch job may start again only after the job
  # credential lifetime (default 120 s); 10 s keeps the requeue test short.
  # sched_interval: pending jobs are looked at every 2 s instead of 60 s.
  cat > "$dir/slurm.conf" <<EOF
ClusterName=iflip-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool-%n
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
MpiDefault=pmix
ReturnToService=2
KillWait=10
MinJobAge=600
GresTypes=gpu
EOF
  local names=$host
  if [ "$nodes" = 2 ]; then
    names=n1,n2
    cat >> "$dir/slurm.conf" <<EOF
NodeName=n1 NodeAddr=127.0.0.2 NodeHostname=n1 Port=$n1_port CPUs=$cpus Gres=gpu:$ngpu State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.3 NodeHostname=n2 Port=$n2_port CPUs=$cpus Gres=gpu:$ngpu State=UNKNOWN
EOF
  else
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Gres=gpu:$ngpu State=UNKNOWN" >> "$dir/slurm.conf"
  fi
  echo "PartitionName=test Nodes=$names Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4" >> "$dir/slurm.conf"
  echo "Name=gpu File=$dir/dev/gpu[0-$((ngpu - 1))]" > "$dir/gres.conf"
  export SLURM_CONF=$dir/slurm.conf
  # Not from an outer job or the user's defaults: this cluster has one partition.
  unset SLURM_JOB_ID SLURM_JOBID SBATCH_PARTITION SLURM_PARTITION SBATCH_ACCOUNT SLURM_ACCOUNT

  slurmctld -f "$SLURM_CONF" -i > "$dir/slurmctld.out" 2>&1 \
    || { cat "$dir/slurmctld.out" >&2; slurm_log_tail 20; echo "slurm_start: slurmctld failed" >&2; return 1; }
  if [ "$nodes" = 2 ]; then
    for i in n1 n2; do
      mkdir -p "$dir/spool-$i" "$dir/tmp-$i"
      unshare --uts --mount /bin/sh -c 'hostname "$1" && mount --bind "$2/tmp-$1" "$2/tmp" && exec slurmd -f "$3" -N "$1"' \
        _ "$i" "$dir" "$SLURM_CONF" > "$dir/slurmd-$i.out" 2>&1 \
        || { cat "$dir/slurmd-$i.out" >&2; slurm_log_tail 20; echo "slurm_start: slurmd $i failed" >&2; return 1; }
    done
  else
    mkdir -p "$dir/spool-$host"
    slurmd -f "$SLURM_CONF" > "$dir/slurmd.out" 2>&1 \
      || { cat "$dir/slurmd.out" >&2; slurm_log_tail 20; echo "slurm_start: slurmd failed" >&2; return 1; }
  fi
  local states=""
  for i in $(seq 1 60); do
    states=$(sinfo -h -N -o '%t' 2>/dev/null | sort -u | tr '\n' ' ') || true
    [ "$states" = "idle " ] && [ "$(sinfo -h -N -o '%N' | wc -l)" = "$nodes" ] && return 0
    sleep 0.5
  done
  slurm_log_tail 20
  echo "slurm_start: the nodes are not idle after 30 s (sinfo says '${states:-nothing}')" >&2
  return 1
}

_slurm_alive() {  # pid: running (a zombie left for an init that does not reap counts as gone)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

_slurm_kill_pidfile() {  # pid file: TERM, wait up to 5 s, then KILL
  local pid i
  [ -f "$1" ] || return 0
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && _slurm_alive "$pid" || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do _slurm_alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# For the test scripts, which set $tmp (their scratch directory) and $log (the
# job output to show when a check fails, or ""):
# fail MESSAGE: says why, shows $log's and the daemons' last lines, exits 1.
fail() {
  echo "FAIL: $*" >&2
  if [ -n "${log:-}" ] && [ -f "$log" ]; then
    echo "--- last 25 lines of $log" >&2
    tail -n 25 "$log" >&2
  fi
  slurm_log_tail 15
  exit 1
}

# `trap slurm_test_cleanup EXIT`: stops the cluster, kills anything of ours
# still running (a job step outliving its slurmd), removes $tmp (KEEP_TMP=1 keeps it).
slurm_test_cleanup() {
  local rc=$? pid
  slurm_stop
  for pid in $(pgrep -f "$tmp" || true); do kill -9 "$pid" 2>/dev/null || true; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  return $rc
}

# Job helpers.
# job_field JOB KEY: a field of `scontrol show job` (the first, for an array).
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -1 | cut -d= -f2-; }

# wait_job_end JOB SECONDS: until the job is in a final state, left in $job_state.
wait_job_end() {
  local i
  for ((i = 0; i < $2 * 2; i++)); do
    job_state=$(job_field "$1" JobState)
    case "$job_state" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
    esac
    sleep 0.5
  done
  fail "job $1 still ${job_state:-unknown} after $2 s"
}

# wait_for_steps RUN_DIR STEPS JOB: until metrics.jsonl has STEPS step records (the job must still run).
wait_for_steps() {
  local i state
  for ((i = 0; i < 1800; i++)); do
    [ -f "$1/metrics.jsonl" ] && [ "$(grep -c '"step"' "$1/metrics.jsonl")" -ge "$2" ] && return 0
    if ((i % 10 == 0)); then
      state=$(job_field "$3" JobState)
      case "$state" in PENDING | CONFIGURING | RUNNING) ;; *) fail "job $3 is $state before step $2" ;; esac
    fi
    sleep 0.1
  done
  fail "run in $1 did not reach step $2 in 180 s"
}

# wait_requeued JOB SECONDS: until the job has restarted once (requeued).
wait_requeued() {
  local i restarts state
  for ((i = 0; i < $2 * 2; i++)); do
    restarts=$(job_field "$1" Restarts)
    [ "${restarts:-0}" -ge 1 ] && return 0
    state=$(job_field "$1" JobState)
    case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT) fail "job $1 ended ($state) instead of being requeued" ;; esac
    sleep 0.5
  done
  fail "job $1 was not requeued within $2 s"
}

slurm_stop() {
  [ -n "$SLURM_TEST_DIR" ] || return 0
  local i
  if [ -f "$SLURM_TEST_DIR/slurmctld.pid" ]; then
    # Our jobs only: SLURM_CONF points at this cluster.
    scancel --full --quiet --user=root 2>/dev/null || true
    for i in $(seq 1 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for i in "$SLURM_TEST_DIR"/slurmd-*.pid; do _slurm_kill_pidfile "$i"; done
  _slurm_kill_pidfile "$SLURM_TEST_DIR/slurmctld.pid"
  _slurm_kill_pidfile "$SLURM_TEST_DIR/munged.pid"
  SLURM_TEST_DIR=""
}
