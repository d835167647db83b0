# shellcheck shell=bash
# Sourced helper: a private one-node Slurm cluster for tests.
#
#   source tests/slurm/slurm_cluster.sh
#   slurm_start "$tmp/slurm"        # munged + slurmctld + slurmd, waits for the node to be idle
#   trap 'slurm_stop' EXIT          # cancels our jobs, stops the daemons by their pid files
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
  for f in "$SLURM_TEST_DIR/slurmctld.log" "$SLURM_TEST_DIR/slurmd.log"; do
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
  local dir=$1 host cpus ctld_port slurmd_port i ngpu=32
  [ "$(id -u)" = 0 ] || slurm_skip "the Slurm test needs root (slurmd runs jobs as their user)"
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
  read -r ctld_port slurmd_port <<< "$(_slurm_free_ports 2)"

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
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
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
NodeName=$host CPUs=$cpus Gres=gpu:$ngpu State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  echo "NodeName=$host Name=gpu File=$dir/dev/gpu[0-$((ngpu - 1))]" > "$dir/gres.conf"
  export SLURM_CONF=$dir/slurm.conf
  # Not from an outer job or the user's defaults: this cluster has one partition.
  unset SLURM_JOB_ID SLURM_JOBID SBATCH_PARTITION SLURM_PARTITION SBATCH_ACCOUNT SLURM_ACCOUNT

  slurmctld -f "$SLURM_CONF" -i > "$dir/slurmctld.out" 2>&1 \
    || { cat "$dir/slurmctld.out" >&2; slurm_log_tail 20; echo "slurm_start: slurmctld failed" >&2; return 1; }
  slurmd -f "$SLURM_CONF" > "$dir/slurmd.out" 2>&1 \
    || { cat "$dir/slurmd.out" >&2; slurm_log_tail 20; echo "slurm_start: slurmd failed" >&2; return 1; }
  local state=""
  for i in $(seq 1 60); do
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1) || true
    [ "$state" = idle ] && return 0
    sleep 0.5
  done
  slurm_log_tail 20
  echo "slurm_start: node $host not idle after 30 s (sinfo says '${state:-nothing}')" >&2
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
  _slurm_kill_pidfile "$SLURM_TEST_DIR/slurmd.pid"
  _slurm_kill_pidfile "$SLURM_TEST_DIR/slurmctld.pid"
  _slurm_kill_pidfile "$SLURM_TEST_DIR/munged.pid"
  SLURM_TEST_DIR=""
}
