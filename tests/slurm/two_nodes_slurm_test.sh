#!/usr/bin/env bash
# slurm/train.sbatch on a private two-node Slurm cluster (tests/slurm/
# slurm_cluster.sh: nodes n1 and n2, each slurmd in its own UTS and mount
# namespace, reached over loopback), one rank per node under srun --mpi=pmix:
# the job is preempted the way Slurm warns before its time limit (USR1 to the
# batch script), both ranks checkpoint and exit 3, the script requeues the job,
# it restarts on both nodes, resumes and ends with a model byte-identical to the
# same training with two ranks on one node (mpirun, shared memory).
# Skipped (exit 77) without root, namespaces or the slurm-wlm/munge packages.
# Usage: two_nodes_slurm_test.sh PATH/TO/instructflip
set -euo pipefail
bin=$(realpath "$1")
cd "$(dirname "$0")/../.."   # the source tree: configs/ and slurm/ resolve from here
tmp=$(mktemp -d)
log=""

source tests/slurm/slurm_cluster.sh
trap slurm_test_cleanup EXIT

t0=$(date +%s)
command -v mpirun > /dev/null || slurm_skip "no mpirun"
slurm_start "$tmp/slurm" 2 || fail "could not start the two-node test cluster"
export INSTRUCTFLIP=$bin
export OMP_NUM_THREADS=1
# The "nodes" are separate hosts to Open MPI: TCP between them, over loopback
# only (a real cluster needs none of this).
export OMPI_MCA_btl=self,tcp,vader OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
unset LAUNCHER INSTRUCTFLIP_SLURM_DIR
"$bin" synth --out "$tmp/store" --domains 2 --per-domain 24 --size 64 --seed 1 > /dev/null
sets=(--set data.store="$tmp/store" --set "data.train_domains=[synA, synB]"
      --set total_steps=24 --set batch_per_rank=4 --set checkpoint.every=2 --set log_every=1
      --set data.loader_threads=1 --set schedule.pct_start=0.25 --set model.t5_warmup.steps=50)
final=checkpoints/step-00000024/model.safetensors

# The reference: the same two ranks on one node.
log=$tmp/ref.log
mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" train --config configs/train/synthetic_tiny.yaml \
  --run-dir "$tmp/ref" "${sets[@]}" > "$log" 2>&1 || fail "the one-node reference failed"
[ -f "$tmp/ref/$final" ] || fail "the reference has no $final"

log=$tmp/pre.out
job=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 --gpus-per-node=1 -o "$log" slurm/train.sbatch \
  configs/train/synthetic_tiny.yaml "$tmp/pre" "${sets[@]}") || fail "sbatch refused the two-node job"
wait_for_steps "$tmp/pre" 5 "$job"
[ "$(job_field "$job" NodeList)" = "n[1-2]" ] || fail "job $job runs on $(job_field "$job" NodeList), not n[1-2]"
for node in n1 n2; do
  grep -q "on $node, local rank 0 of 1" "$log" || fail "no rank on $node (local rank 0 of 1)"
done
scancel --signal=USR1 --batch "$job"
wait_requeued "$job" 120
grep -q "train: stopped at step" "$log" || fail "instructflip did not stop after a checkpoint"
stop_step=$(grep -o "train: stopped at step [0-9]*" "$log" | head -1 | grep -o "[0-9]*$")
{ [ "$stop_step" -ge 5 ] && [ "$stop_step" -lt 24 ]; } || fail "stopped at step $stop_step, expected 5..23"
wait_job_end "$job" 240
[ "$job_state" = COMPLETED ] || fail "job $job ended $job_state"
grep -q "restart 1 on" "$log" || fail "no second start with SLURM_RESTART_COUNT=1"
grep -q "resumed from $tmp/pre/checkpoints/step-" "$log" || fail "the requeued job did not resume"
[ "$(grep -c "on n2, local rank 0 of 1" "$log")" -ge 2 ] || fail "the requeued job had no rank on n2"
log=""
cmp "$tmp/ref/$final" "$tmp/pre/$final" ||
  fail "the two-node preempted+resumed model differs from the one-node uninterrupted one (stopped at step $stop_step)"
echo "two_nodes_slurm_test: ranks on n1 and n2, preempted at step $stop_step, requeued, resumed:" \
     "final model byte-identical to one node; all checks passed in $(($(date +%s) - t0)) s"
