# shellcheck shell=bash
# slurm/common.sh: shared by train.sbatch, eval.sbatch and lodo_array.sbatch
# (sourced, not run). It launches one job step in the background, forwards a
# stop request to it, and turns exit code 3 into a requeue.
#
# sbatch runs a *copy* of the script from its spool directory, so the templates
# find this file through INSTRUCTFLIP_SLURM_DIR (default: $SLURM_SUBMIT_DIR/slurm,
# i.e. submit from the source tree, or export INSTRUCTFLIP_SLURM_DIR=/path/to/slurm).
#
# Knobs (environment; sbatch exports the submitting shell's environment):
#   INSTRUCTFLIP   the binary (default: `instructflip` on PATH)
#   LAUNCHER       what starts the ranks (default: `srun --mpi=pmix`; e.g.
#                  LAUNCHER="mpirun" with an Open MPI built with Slurm support)
#   OMP_NUM_THREADS  threads per rank (default: --cpus-per-task if given, else 1)

IFLIP_EXIT_REQUEUE=3   # instructflip: "stopped after a checkpoint; requeue me"

iflip_log() { echo "[instructflip-slurm $(date '+%F %T')] $*"; }

# iflip_setup: defaults and a header line (job, restart count, nodes).
iflip_setup() {
  INSTRUCTFLIP=${INSTRUCTFLIP:-instructflip}
  read -r -a IFLIP_LAUNCHER <<< "${LAUNCHER:-srun --mpi=pmix}"
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
  if ! command -v "$INSTRUCTFLIP" > /dev/null; then
    iflip_log "error: instructflip binary '$INSTRUCTFLIP' not found (set INSTRUCTFLIP=/path/to/instructflip)"
    exit 2
  fi
  iflip_log "job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}" \
            "restart ${SLURM_RESTART_COUNT:-0} on ${SLURM_JOB_NODELIST:-$(hostname)}:" \
            "${SLURM_NTASKS:-?} task(s), OMP_NUM_THREADS=$OMP_NUM_THREADS"
}

# iflip_forward_stop SIGNAL: the batch shell got SIGNAL (USR1 from
# --signal=B:USR1@120 or `scancel --signal=USR1 --batch`; TERM at the time
# limit or on preemption). Pass a SIGUSR1 to the launcher: srun forwards it to
# every task of the step, mpirun to every rank; instructflip then stops all
# ranks at the same step, checkpoints and exits 3.
iflip_forward_stop() {
  IFLIP_SIGNALLED=1
  iflip_log "got SIG$1: asking the ranks to checkpoint and stop (SIGUSR1 to ${IFLIP_LAUNCHER[0]}, pid $IFLIP_PID)"
  kill -USR1 "$IFLIP_PID" 2>/dev/null || true
}

# iflip_launch COMMAND ARGS...: runs "$LAUNCHER COMMAND ARGS..." in the
# background (bash runs a trap only between commands, and `wait` returns when
# one arrives), forwards USR1/TERM, and sets IFLIP_RC to the step's exit code.
iflip_launch() {
  iflip_log "${IFLIP_LAUNCHER[*]} $*"
  "${IFLIP_LAUNCHER[@]}" "$@" &
  IFLIP_PID=$!
  trap 'iflip_forward_stop USR1' USR1
  trap 'iflip_forward_stop TERM' TERM
  while :; do
    IFLIP_SIGNALLED=0
    wait "$IFLIP_PID"
    IFLIP_RC=$?
    # A trap interrupted `wait`: wait again for the real exit code (bash keeps
    # it even when the step ended meanwhile).
    [ "$IFLIP_SIGNALLED" = 1 ] || break
  done
  # The traps stay: a late USR1 must not kill this script before it requeues.
}

# iflip_finish: exit 0 when done; on exit code 3 requeue this job (it resumes
# from its checkpoint: --resume auto) and exit 0; otherwise pass the failure on.
iflip_finish() {
  case "$IFLIP_RC" in
    0)
      iflip_log "finished"
      exit 0 ;;
    "$IFLIP_EXIT_REQUEUE")
      if [ -z "${SLURM_JOB_ID:-}" ]; then
        iflip_log "checkpointed after a stop request; not a Slurm job: run the same command again to resume"
        exit "$IFLIP_EXIT_REQUEUE"
      fi
      iflip_log "checkpointed after a stop request: requeueing job $SLURM_JOB_ID"
      if scontrol requeue "$SLURM_JOB_ID"; then
        exit 0
      fi
      iflip_log "error: scontrol requeue $SLURM_JOB_ID failed (submitted with --no-requeue?);" \
                "submit the same command again to resume from the checkpoint"
      exit "$IFLIP_EXIT_REQUEUE" ;;
    *)
      iflip_log "failed: exit code $IFLIP_RC"
      exit "$IFLIP_RC" ;;
  esac
}
