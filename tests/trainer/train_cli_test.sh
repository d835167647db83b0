#!/usr/bin/env bash
# `instructflip train` end to end on a tiny synthetic store:
#  - a run stopped by SIGUSR1 exits 3 after a checkpoint; resumed, it ends with
#    a model byte-identical to an uninterrupted run;
#  - a run killed with kill -9 at a random step, and one killed exactly inside a
#    checkpoint write (three points), resume to the same model;
#  - under mpirun, a killed rank ends the job with an error within the timeout;
#  - bad configuration is refused before any compute.
# Usage: train_cli_test.sh PATH/TO/instructflip
set -euo pipefail
bin=$(realpath "$1")
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=tests/common/mpi_ranks.sh
. "$(dirname "$0")/../common/mpi_ranks.sh"
cd "$(dirname "$0")/../.."   # the source tree: configs/ resolve from here

"$bin" synth --out "$tmp/store" --domains 2 --per-domain 24 --size 64 --seed 1 > /dev/null
common=(--config configs/train/synthetic_tiny.yaml --set data.store="$tmp/store" --set "data.train_domains=[synA, synB]"
        --set total_steps=8 --set batch_per_rank=4 --set checkpoint.every=2 --set log_every=1
        --set data.loader_threads=1 --set schedule.pct_start=0.25 --set model.t5_warmup.steps=20)
final=checkpoints/step-00000008/model.safetensors

"$bin" train "${common[@]}" --run-dir "$tmp/a" > "$tmp/a.log" 2>&1 || fail "uninterrupted run: $(tail -3 "$tmp/a.log")"
[ -f "$tmp/a/$final" ] || fail "no final checkpoint"
[ -f "$tmp/a/config.yaml" ] || fail "no resolved config in the run directory"
grep -q "total_steps: 8" "$tmp/a/config.yaml" || fail "resolved config lacks the override"
# The build that wrote the run, as --version names it.
version=$("$bin" --version)
grep -q "^$version at .*: train, resume 'auto', 1 rank(s)$" "$tmp/a/versions.txt" ||
  fail "versions.txt lacks '$version': $(cat "$tmp/a/versions.txt" 2>&1)"
[ "$(grep -c '"step"' "$tmp/a/metrics.jsonl")" = 8 ] || fail "metrics.jsonl should have 8 step records"
# Each session marks where it starts (a resume drops what a killed session logged from there on).
[ "$(head -1 "$tmp/a/metrics.jsonl" | cut -c1-18)" = '{"session_start":1' ] || fail "metrics.jsonl lacks its session marker"

# eval: the trained model on both domains' test splits; 2 ranks give the same scores.
"$bin" eval "${common[@]}" --checkpoint "$tmp/a/checkpoints/step-00000008" --targets synA,synB --out "$tmp/eval1" \
    > "$tmp/eval1.log" 2>&1 || fail "eval: $(tail -3 "$tmp/eval1.log")"
for f in scores.csv metrics.json metrics.md roc_synA.csv roc_synB.csv; do
  [ -f "$tmp/eval1/$f" ] || fail "eval did not write $f"
done
grep -q '"synB"' "$tmp/eval1/metrics.json" || fail "metrics.json lacks synB"
# ... and TensorBoard beside them: each target's metrics at the checkpoint's step.
grep -aq "test/synB/hter" "$tmp/eval1"/events.out.tfevents.* || fail "eval wrote no TensorBoard metrics"
# eval checks a checkpoint as resume does: a damaged one is refused, named.
cp -r "$tmp/a/checkpoints/step-00000008" "$tmp/damaged"
mv "$tmp/damaged" "$tmp/step-00000008"
size=$(stat -c %s "$tmp/step-00000008/model.safetensors")
printf '\x55' | dd of="$tmp/step-00000008/model.safetensors" bs=1 seek=$((size - 9)) conv=notrunc status=none
for given in "$tmp/step-00000008" "$tmp/step-00000008/model.safetensors"; do
  set +e
  "$bin" eval "${common[@]}" --checkpoint "$given" --targets synA --out "$tmp/eval-damaged" > /dev/null 2> "$tmp/err"; rc=$?
  set -e
  [ "$rc" = 2 ] && grep -q "file 'model.safetensors' fails its checksum" "$tmp/err" ||
    fail "eval of a damaged checkpoint ($given): rc $rc: $(cat "$tmp/err")"
done
rm -rf "$tmp/step-00000008"
grep -q "^$version at .*: eval of .*step-00000008/model.safetensors, 1 rank(s)$" "$tmp/eval1/versions.txt" ||
  fail "eval's versions.txt: $(cat "$tmp/eval1/versions.txt" 2>&1)"
grep -q "| \*\*mean\*\* |" "$tmp/eval1.log" || fail "eval did not print the table"
grep -q '"style_question": "uniform"' "$tmp/eval1/metrics.json" || fail "metrics.json does not state the style question"
# `metrics` reads eval's scores.csv as it is and recomputes eval's numbers.
"$bin" metrics --scores "$tmp/eval1/scores.csv" --json > "$tmp/recomputed.json" 2> "$tmp/recomputed.err" ||
  fail "metrics rejects eval's scores.csv: $(cat "$tmp/recomputed.err")"
python3 - "$tmp/eval1/metrics.json" "$tmp/recomputed.json" <<'PY' || fail "metrics of eval's scores.csv differ from eval's"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in ("synA", "synB"):
    for k in ("videos", "eer", "hter", "acc", "tpr_at_fpr_1pct"):
        assert abs(a["domains"][d][k] - b["domains"][d][k]) < 1e-4, (d, k, a["domains"][d][k], b["domains"][d][k])
PY
# Bad rule names: exit 2 naming the key and the value, nothing written.
for bad in "data.style_question=shortcut" "eval.style_question=random"; do
  set +e
  "$bin" eval "${common[@]}" --set "$bad" --checkpoint "$tmp/a/checkpoints/step-00000008" --targets synA \
      --out "$tmp/bad_eval" > /dev/null 2> "$tmp/bad.err"; rc=$?
  set -e
  [ "$rc" = 2 ] && grep -q "'${bad%%=*}'.*'${bad#*=}'" "$tmp/bad.err" || fail "$bad: rc $rc, $(cat "$tmp/bad.err")"
  [ ! -e "$tmp/bad_eval" ] || fail "$bad: eval wrote output"
done
for targets in "synA,,synB" "synA,"; do
  set +e
  "$bin" eval "${common[@]}" --checkpoint "$tmp/a/checkpoints/step-00000008" --targets "$targets" \
      --out "$tmp/bad_eval" > /dev/null 2> "$tmp/bad.err"; rc=$?
  set -e
  [ "$rc" = 2 ] && grep -q -- "--targets '$targets' has an empty domain name" "$tmp/bad.err" ||
    fail "--targets $targets: rc $rc, $(cat "$tmp/bad.err")"
done
if command -v mpirun > /dev/null; then
  mpirun -np 2 --oversubscribe --allow-run-as-root "$bin" eval "${common[@]}" --checkpoint "$tmp/a/checkpoints/step-00000008" \
      --targets synA,synB --out "$tmp/eval2" > "$tmp/eval2.log" 2>&1 || fail "2-rank eval: $(tail -3 "$tmp/eval2.log")"
  # Same samples, labels and order; scores equal up to BLAS threading (mpirun
  # binds each rank to one core, so matmuls sum in another order).
  python3 - "$tmp/eval1/scores.csv" "$tmp/eval2/scores.csv" <<'PY' || fail "2-rank eval scores differ from 1-rank"
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
for x, y in zip(a, b):
    assert (x["label"], x["video_id"], x["domain"], x["sample_index"]) == (y["label"], y["video_id"], y["domain"], y["sample_index"]), (x, y)
    assert abs(float(x["score"]) - float(y["score"])) < 1e-5, (x, y)
PY
fi

wait_for_steps() {  # run dir, steps (up to 2 minutes: a loaded machine starts slowly)
  for _ in $(seq 1 1200); do
    [ -f "$1/metrics.jsonl" ] && [ "$(grep -c '"step"' "$1/metrics.jsonl")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "run in $1 did not reach step $2"
}

# SIGUSR1: checkpoint at the next step boundary, exit 3, resume to the same model.
"$bin" train "${common[@]}" --run-dir "$tmp/b" > "$tmp/b.log" 2>&1 &
pid=$!
wait_for_steps "$tmp/b" 3
kill -USR1 $pid
set +e; wait $pid; rc=$?; set -e
[ "$rc" = 3 ] || fail "SIGUSR1 run exited $rc, expected 3: $(tail -3 "$tmp/b.log")"
grep -q "stopped at step" "$tmp/b.log" || fail "no stop message"
"$bin" train "${common[@]}" --run-dir "$tmp/b" --resume auto > "$tmp/b2.log" 2>&1 || fail "resume after SIGUSR1"
grep -q "resumed from" "$tmp/b2.log" || fail "second run did not resume"
cmp "$tmp/a/$final" "$tmp/b/$final" || fail "resumed model differs from the uninterrupted one"

# A stop signal during start-up (here a T5 warm-up of 100000 steps, minutes
# long) ends the process at once with exit 3, before any step or checkpoint
# (the step loop would only have seen it after the warm-up).
timeout -s KILL 60 "$bin" train "${common[@]}" --set model.t5_warmup.steps=100000 --run-dir "$tmp/s" \
  > "$tmp/s.log" 2>&1 &
pid=$!
# config.yaml is written just before the run starts (and warms T5 up).
for _ in $(seq 1 200); do [ -f "$tmp/s/config.yaml" ] && break; sleep 0.1; done
[ -f "$tmp/s/config.yaml" ] || fail "the start-up signal run wrote no config.yaml: $(tail -3 "$tmp/s.log")"
sleep 1
start=$(date +%s%N)
pkill -TERM -f "^$bin train.*$tmp/s" || fail "no start-up signal run to stop"
set +e; wait $pid; rc=$?; set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 3 ] && grep -q "stop signal during start-up: exiting now" "$tmp/s.log" ||
  fail "SIGTERM during start-up: rc $rc after $ms ms: $(tail -3 "$tmp/s.log")"
[ "$ms" -lt 5000 ] || fail "SIGTERM during start-up took $ms ms"
[ ! -e "$tmp/s/metrics.jsonl" ] || fail "a step ran after SIGTERM during start-up"

# kill -9 at some point (a checkpoint is written every 2 steps), then resume.
"$bin" train "${common[@]}" --run-dir "$tmp/c" > "$tmp/c.log" 2>&1 &
pid=$!
wait_for_steps "$tmp/c" 4
kill -9 $pid
wait $pid 2>/dev/null || true
"$bin" train "${common[@]}" --run-dir "$tmp/c" --resume auto > "$tmp/c2.log" 2>&1 || fail "resume after kill -9"
cmp "$tmp/a/$final" "$tmp/c/$final" || fail "model after kill -9 + resume differs"

# kill -9 exactly inside the step-4 checkpoint write, at each point of it: the
# resume takes step 2 (or step 4 once it is renamed complete) and ends identical.
for point in after_first_file before_complete before_latest; do
  run="$tmp/crash-$point"
  code=0
  INSTRUCTFLIP_CRASH_AT=4:$point "$bin" train "${common[@]}" --run-dir "$run" > "$run.log" 2>&1 || code=$?
  [ "$code" = 137 ] || fail "$point: expected death by SIGKILL (137), got $code: $(tail -3 "$run.log")"
  [ "$(cat "$run/checkpoints/latest")" = step-00000002 ] || fail "$point: latest should still name step 2"
  if [ "$point" = before_latest ]; then
    [ -f "$run/checkpoints/step-00000004/COMPLETE" ] || fail "$point: step 4 should be complete"
  else
    [ -d "$run/checkpoints/step-00000004.tmp" ] || fail "$point: no half-written step-4 directory"
    [ ! -e "$run/checkpoints/step-00000004" ] || fail "$point: an incomplete step 4 was published"
  fi
  "$bin" train "${common[@]}" --run-dir "$run" --resume auto > "$run.resume.log" 2>&1 || fail "$point: resume"
  expected=step-00000002
  [ "$point" = before_latest ] && expected=step-00000004
  grep -q "resumed from .*$expected" "$run.resume.log" || fail "$point: did not resume from $expected"
  [ "$(wc -l < "$run/versions.txt")" = 2 ] || fail "$point: versions.txt should name both starts"
  cmp "$tmp/a/$final" "$run/$final" || fail "$point: model after a crash inside a checkpoint write differs"
done

# Bad input: refused with a clear error, exit 2.
set +e
"$bin" train "${common[@]}" --run-dir "$tmp/d" --set optimiser.lr=1 > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "unknown key 'optimiser'" "$tmp/err" || fail "unknown key accepted (rc $rc): $(cat "$tmp/err")"
set +e
"$bin" train "${common[@]}" --run-dir "$tmp/d" --set data.store="$tmp/nowhere" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "does not exist" "$tmp/err" || fail "missing store accepted (rc $rc): $(cat "$tmp/err")"
[ ! -e "$tmp/d" ] || fail "a refused launch left its run directory behind: $(ls -A "$tmp/d")"
set +e
"$bin" train "${common[@]}" --run-dir "$tmp/d" --set "data.train_domains=[synZ]" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "unknown domain 'synZ'" "$tmp/err" || fail "unknown domain accepted (rc $rc): $(cat "$tmp/err")"
[ ! -e "$tmp/d" ] || fail "a launch refused for its data left its run directory behind: $(ls -A "$tmp/d")"
# ... and a directory that was there is left as it was, so the corrected launch runs.
mkdir "$tmp/d"
"$bin" train "${common[@]}" --run-dir "$tmp/d" --set "data.train_domains=[synZ]" > /dev/null 2>&1 && fail "synZ accepted"
[ -z "$(ls -A "$tmp/d")" ] || fail "a launch refused for its data wrote into its run directory: $(ls -A "$tmp/d")"
rmdir "$tmp/d"
# Values the code cannot run with, and paths of the wrong kind: one line, exit 2
# (log_every=0 used to divide by zero; a directory as --config gave a libstdc++ message).
touch "$tmp/a-file"
while IFS='|' read -r expected args; do
  set +e
  # shellcheck disable=SC2086
  "$bin" train "${common[@]}" $args > /dev/null 2> "$tmp/err"; rc=$?
  set -e
  [ "$rc" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -qF "$expected" "$tmp/err" ||
    fail "$args: rc $rc: $(cat "$tmp/err")"
done <<CASES
'log_every' must be >= 1, got 0|--run-dir $tmp/refused --set log_every=0
'data.loader_threads' must be in 1..256|--run-dir $tmp/refused --set data.loader_threads=0
'optimizer.beta2' must be in (0, 1)|--run-dir $tmp/refused --set optimizer.beta2=1
'schedule.max_lr' must be > 0|--run-dir $tmp/refused --set schedule.max_lr=-1
'schedule.max_lr' must be > 0 and at most 3.4e38 (a float), got 1e+300|--run-dir $tmp/refused --set schedule.max_lr=1e300
'schedule.max_momentum' must be in [0, 1), got 5|--run-dir $tmp/refused --set schedule.max_momentum=5
'schedule.div_factor' must be > 0, got inf|--run-dir $tmp/refused --set schedule.div_factor=.inf
field 'qformer.dropout' must be in [0, 1), got 2|--run-dir $tmp/refused --set model.qformer.dropout=2
field 'cue_hidden' must be in 1..65536, got 0|--run-dir $tmp/refused --set model.cue_hidden=0
field 'loss.ssl' must be >= 0, got -1|--run-dir $tmp/refused --set model.loss.ssl=-1
is a file, not a directory|--run-dir $tmp/a-file
CASES
set +e
"$bin" train --config "$tmp" --run-dir "$tmp/refused" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "config file '$tmp' is a directory" "$tmp/err" || fail "--config DIR: rc $rc: $(cat "$tmp/err")"
set +e
"$bin" eval "${common[@]}" --checkpoint "$tmp/a/checkpoints/step-00000008" --targets synA --out "$tmp/a-file" \
    > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "out '$tmp/a-file' is a file, not a directory" "$tmp/err" || fail "eval --out FILE: rc $rc: $(cat "$tmp/err")"
[ ! -e "$tmp/refused" ] || fail "a refused train wrote its run directory"

# Going on in a run directory under another configuration is refused, naming the
# changed keys, unless asked for (and then recorded).
cp -r "$tmp/a" "$tmp/changed"
set +e
"$bin" train "${common[@]}" --set schedule.max_lr=0.5 --run-dir "$tmp/changed" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "was started with another configuration" "$tmp/err" && grep -q "schedule.max_lr: .* -> 0.5" "$tmp/err" ||
  fail "changed config on resume: rc $rc: $(cat "$tmp/err")"
cmp -s "$tmp/a/config.yaml" "$tmp/changed/config.yaml" || fail "a refused resume rewrote config.yaml"
"$bin" train "${common[@]}" --set schedule.max_lr=0.5 --run-dir "$tmp/changed" --allow-config-change > /dev/null 2>&1 ||
  fail "--allow-config-change was refused"
grep -q "configuration changed (--allow-config-change): schedule.max_lr" "$tmp/changed/versions.txt" ||
  fail "the allowed change is not recorded: $(cat "$tmp/changed/versions.txt")"
# An allowed change that cannot resume (another model shape) is refused at the
# checkpoint, and the run directory keeps the configuration it holds.
cp "$tmp/changed/config.yaml" "$tmp/changed.yaml"
set +e
"$bin" train "${common[@]}" --set model.cue_hidden=8 --run-dir "$tmp/changed" --allow-config-change > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "cue_generator.* has shape" "$tmp/err" || fail "resume of another model shape: rc $rc: $(cat "$tmp/err")"
cmp -s "$tmp/changed.yaml" "$tmp/changed/config.yaml" || fail "a refused resume rewrote config.yaml"
# The saved configuration holds every key in force, hidden defaults included,
# in shortest round-trip form.
for key in "clip_grad_norm: 0.0" "  validation_seed: 1" "  base_momentum: 0.85" "  weight_decay: 1e-07" "  bucket_mb: 25.0"; do
  grep -q "^$key$" "$tmp/a/config.yaml" || fail "config.yaml lacks '$key': $(cat "$tmp/a/config.yaml")"
done

# One training per run directory: a second on the same one is refused, naming the first.
"$bin" train "${common[@]}" --set total_steps=400 --run-dir "$tmp/locked" > "$tmp/locked.log" 2>&1 &
first=$!
wait_for_steps "$tmp/locked" 1
set +e
"$bin" train "${common[@]}" --set total_steps=400 --run-dir "$tmp/locked" > /dev/null 2> "$tmp/err"; rc=$?
set -e
kill -USR1 $first; wait $first || true
[ "$rc" = 2 ] && grep -q "run directory '$tmp/locked' is in use by another process (pid $first on host " "$tmp/err" ||
  fail "second training on one run directory: rc $rc: $(cat "$tmp/err")"
[ "$(grep -c '"step"' "$tmp/locked/metrics.jsonl")" = "$(sort -u "$tmp/locked/metrics.jsonl" | grep -c '"step"')" ] ||
  fail "metrics.jsonl has duplicated lines"

# A killed rank ends the whole job with an error, well within the timeout.
if command -v mpirun > /dev/null; then
  start=$(date +%s)
  mpirun -np 2 --oversubscribe --allow-run-as-root "$bin" train "${common[@]}" --set total_steps=400 \
      --set dist.timeout_s=30 --run-dir "$tmp/e" > "$tmp/e.log" 2>&1 &
  job=$!
  wait_for_steps "$tmp/e" 2
  kill_rank_and_expect_end "instructflip train.*$tmp/e" "$job" "$start" "job with a killed rank"

  # Ctrl-C reaching one rank (SIGINT) stops every rank at the same step with a
  # checkpoint, as SIGTERM does; mpirun then exits 3 like its ranks. (SIGTERM or
  # SIGINT sent to mpirun itself: the ranks checkpoint and exit 3 too, but Open
  # MPI's mpirun reports 1; SIGUSR1 to mpirun gives 3. README: "Signals".)
  mpirun -np 2 --oversubscribe --allow-run-as-root "$bin" train "${common[@]}" --set total_steps=400 \
      --run-dir "$tmp/g" > "$tmp/g.log" 2>&1 &
  job=$!
  wait_for_steps "$tmp/g" 2
  interrupted=$(rank_pid "instructflip train.*$tmp/g" 1)
  [ -n "$interrupted" ] || fail "could not find rank 1"
  kill -INT "$interrupted"
  set +e; wait $job; rc=$?; set -e
  [ "$rc" = 3 ] || fail "SIGINT on rank 1: mpirun exited $rc, not 3: $(tail -3 "$tmp/g.log")"
  stopped=$(grep -o "stopped at step [0-9]*" "$tmp/g.log" | head -1 | grep -o "[0-9]*$")
  [ -n "$stopped" ] && [ "$(cat "$tmp/g/checkpoints/latest")" = "$(printf 'step-%08d' "$stopped")" ] ||
    fail "SIGINT on rank 1: no checkpoint at the stop step: $(tail -3 "$tmp/g.log")"

  # Ranks started with different configurations (mpirun's colon syntax) refuse
  # together, the differing rank naming the key, instead of training silently.
  set +e
  mpirun --oversubscribe --allow-run-as-root -np 1 "$bin" train "${common[@]}" --run-dir "$tmp/f" : \
      -np 1 "$bin" train "${common[@]}" --set schedule.max_lr=0.5 --run-dir "$tmp/f" > "$tmp/f.log" 2>&1; rc=$?
  set -e
  [ "$rc" != 0 ] && grep -q "rank 1 runs another configuration or store than rank 0: schedule.max_lr: .* -> 0.5" \
      "$tmp/f.log" || fail "ranks with different configurations: rc $rc: $(tail -5 "$tmp/f.log")"
  [ ! -e "$tmp/f/metrics.jsonl" ] || fail "ranks with different configurations trained"
fi
echo "train_cli_test: all checks passed"
