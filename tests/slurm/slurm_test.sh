#!/usr/bin/env bash
# The Slurm templates (slurm/) end to end on a private one-node Slurm cluster
# (tests/slurm/slurm_cluster.sh: munged, slurmctld, slurmd under a temp dir):
#  a. a tiny synthetic store;
#  b. slurm/train.sbatch, 2 ranks under `srun --mpi=pmix`, uninterrupted;
#  c. the same job preempted the way Slurm warns a job before its time limit
#     (USR1 to the batch script): the ranks checkpoint and exit 3, the script
#     requeues the job, it restarts (SLURM_RESTART_COUNT=1), resumes and ends
#     with a model byte-identical to (b)'s;
#  d. `instructflip lodo --slurm`: the protocol as a job array plus an
#     aggregation job (lodo.md, lodo.json); run again, everything is finished.
# Skipped (exit 77) without root or without the slurm-wlm/munge packages.
# Usage: slurm_test.sh PATH/TO/instructflip
set -euo pipefail
bin=$(realpath "$1")
cd "$(dirname "$0")/../.."   # the source tree: configs/ and slurm/ resolve from here
tmp=$(mktemp -d)
log=""   # the job output shown when a check fails

source tests/slurm/slurm_cluster.sh
trap slurm_test_cleanup EXIT

t0=$(date +%s)
part_start=$t0
declare -a timings=()
part_done() { local now; now=$(date +%s); timings+=("$1: $((now - part_start)) s"); part_start=$now; }

# ---- a. cluster and store -------------------------------------------------
slurm_start "$tmp/slurm" || fail "could not start the test cluster"
export INSTRUCTFLIP=$bin           # the templates' binary
export OMP_NUM_THREADS=1           # one thread per rank: the same sums in every run
unset LAUNCHER INSTRUCTFLIP_SLURM_DIR   # the defaults: srun --mpi=pmix, $SLURM_SUBMIT_DIR/slurm
"$bin" synth --out "$tmp/store" --domains 2 --per-domain 24 --size 64 --seed 1 > /dev/null
part_done "a (cluster, store)"

# The tiny model's T5 warm-up (a stand-in for pretraining, run by every rank
# at the start of a fresh run) costs more than the training here: shortened,
# as it does not matter to what is tested.
fast=(--set model.t5_warmup.steps=50)
sets=(--set data.store="$tmp/store" --set "data.train_domains=[synA, synB]"
      --set total_steps=30 --set batch_per_rank=4 --set checkpoint.every=2 --set log_every=1
      --set data.loader_threads=1 --set schedule.pct_start=0.25 "${fast[@]}")
final=checkpoints/step-00000030/model.safetensors
# The template's one place to edit, as on a 2-GPU node (command-line options
# override its #SBATCH lines; -n alone would keep --ntasks-per-node=4 = 4 CPUs).
shape=(--nodes=1 --ntasks-per-node=2 --gpus-per-node=2)

# ---- b. uninterrupted reference run ---------------------------------------
log=$tmp/ref.out
# (sbatch --wait would do, but it polls with growing pauses: up to ~30 s lost.)
ref_job=$(sbatch --parsable "${shape[@]}" -o "$log" slurm/train.sbatch configs/train/synthetic_tiny.yaml "$tmp/ref" \
    "${sets[@]}") || fail "sbatch refused the reference job"
wait_job_end "$ref_job" 300
[ "$job_state" = COMPLETED ] || fail "reference job $ref_job ended $job_state (exit $(job_field "$ref_job" ExitCode))"
[ -f "$tmp/ref/$final" ] || fail "reference run has no $final"
[ "$(grep -c '"step"' "$tmp/ref/metrics.jsonl")" = 30 ] || fail "reference metrics.jsonl should have 30 step records"
grep -q "restart 0 on" "$log" || fail "no start line from slurm/common.sh"
grep -q "2 task(s), OMP_NUM_THREADS=1" "$log" || fail "the job did not get 2 tasks and OMP_NUM_THREADS=1"
grep -q "srun --mpi=pmix $bin train" "$log" || fail "the default launcher is not srun --mpi=pmix"
grep -q -- "--resume auto" "$log" || fail "train.sbatch did not pass --resume auto"
part_done "b (reference run)"

# ---- c. preempted run: USR1 -> checkpoint, exit 3 -> requeue -> resume -----
log=$tmp/pre.out
pre_job=$(sbatch --parsable "${shape[@]}" -o "$log" slurm/train.sbatch configs/train/synthetic_tiny.yaml "$tmp/pre" "${sets[@]}")
wait_for_steps "$tmp/pre" 5 "$pre_job"
# What Slurm does --signal=B:USR1@120 before the time limit (and what a
# preempting site can send): USR1 to the batch script only.
scancel --signal=USR1 --batch "$pre_job"
wait_requeued "$pre_job" 120
grep -q "got SIGUSR1: asking the ranks to checkpoint" "$log" || fail "the batch script did not see the USR1"
grep -q "train: stopped at step" "$log" || fail "instructflip did not stop after a checkpoint"
stop_step=$(grep -o "train: stopped at step [0-9]*" "$log" | head -1 | grep -o "[0-9]*$")
{ [ "$stop_step" -ge 5 ] && [ "$stop_step" -lt 30 ]; } || fail "stopped at step $stop_step, expected 5..29"
[ -d "$tmp/pre/checkpoints/$(printf 'step-%08d' "$stop_step")" ] || fail "no checkpoint at the stop step $stop_step"
grep -q "requeueing job $pre_job" "$log" || fail "the batch script did not requeue after exit 3"
# A requeued batch job is held (BeginTime) until its old job credential
# expires: 120 s by default, about 11 s with this cluster's cred_expire=10.
# Do not shorten it with `scontrol update jobid=J StartTime=now`: a restart
# within the second of the requeue is refused by slurmd ("Job credential
# revoked") and the job ends FAILED (seen here).
wait_job_end "$pre_job" 240
[ "$job_state" = COMPLETED ] || fail "preempted job $pre_job ended $job_state"
[ "$(job_field "$pre_job" Restarts)" = 1 ] || fail "job $pre_job restarted $(job_field "$pre_job" Restarts) times, expected 1"
grep -q "restart 1 on" "$log" || fail "no second start with SLURM_RESTART_COUNT=1"
grep -q "resumed from $tmp/pre/checkpoints/step-" "$log" || fail "the requeued job did not resume from a checkpoint"
grep -q "train: finished at step 30" "$log" || fail "the requeued job did not finish"
[ -f "$tmp/pre/$final" ] || fail "preempted run has no $final"
if ! cmp "$tmp/ref/$final" "$tmp/pre/$final"; then
  first=$(python3 - "$tmp/ref/metrics.jsonl" "$tmp/pre/metrics.jsonl" <<'PY'
import json, sys
a, b = ([r for r in map(json.loads, open(p)) if "step" in r] for p in sys.argv[1:3])
print(next((x["step"] for x, y in zip(a, b) if x["loss"] != y["loss"]), "none"))
PY
  )
  log=""
  fail "the preempted+resumed model differs from the uninterrupted one (stopped at step $stop_step;" \
       "first step whose loss differs: $first)"
fi
echo "preempted at step $stop_step, requeued, resumed: final model byte-identical to the uninterrupted run"
part_done "c (preempt, requeue, resume)"

# ---- d. instructflip lodo --slurm: a job array and an aggregation job -------
{
  log=""
  # Enough videos per domain for the validation hold-out of each job's source domains.
  "$bin" synth --out "$tmp/store4" --domains 4 --per-domain 48 --size 64 --seed 1 > /dev/null
  lodo=("$bin" lodo --protocol configs/protocols/synthetic_lodo.yaml --run-dir "$tmp/lodo" --ranks 2
        --set data.store="$tmp/store4" --set total_steps=6 --set batch_per_rank=4 --set data.loader_threads=1
        --set schedule.pct_start=0.25
        "${fast[@]}")
  "${lodo[@]}" --slurm > "$tmp/lodo.out" 2>&1 || { log=$tmp/lodo.out; fail "lodo --slurm failed"; }
  grep -q "submitted job array" "$tmp/lodo.out" || { log=$tmp/lodo.out; fail "lodo --slurm submitted nothing"; }
  for ((i = 0; i < 900; i++)); do
    [ -z "$(squeue -h -o %i)" ] && break
    sleep 1
  done
  if [ -n "$(squeue -h -o %i)" ]; then
    squeue >&2
    log=$(ls -t "$tmp"/lodo/jobs/slurm-*.log 2>/dev/null | head -1)
    fail "lodo jobs still queued or running after 900 s"
  fi
  log=$(ls "$tmp"/lodo/slurm-aggregate-*.log 2>/dev/null | head -1)
  for f in lodo.md lodo.json; do
    [ -f "$tmp/lodo/$f" ] || {
      for f2 in "$tmp"/lodo/jobs/slurm-*.log; do [ -f "$f2" ] && { echo "--- $f2" >&2; tail -n 8 "$f2" >&2; }; done
      grep -h "error" "$SLURM_TEST_DIR"/slurmd-*.log | grep -v spmix | tail -n 4 >&2 || true
      fail "lodo --slurm wrote no $f"
    }
  done
  rows=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$tmp/lodo/lodo.json")
  [ "$rows" = 4 ] || fail "lodo.json has $rows rows, expected 4"
  # Run again, here: every job is finished, nothing is retrained.
  counts() { find "$tmp/lodo" -name metrics.jsonl -exec wc -l {} + | sort; }
  before=$(counts)
  [ -n "$before" ] || fail "no metrics.jsonl under $tmp/lodo"
  log=$tmp/lodo2.out
  "${lodo[@]}" > "$log" 2>&1 || fail "lodo (again, locally) failed"
  [ "$(grep -c "finished before, skipped" "$log")" = 4 ] || fail "lodo again did not skip the 4 finished jobs"
  [ "$(counts)" = "$before" ] || fail "lodo again retrained: metrics.jsonl changed"
  part_done "d (lodo --slurm array + aggregation)"
}

printf '  %s\n' "${timings[@]}"
echo "slurm_test: all checks passed in $(($(date +%s) - t0)) s"
