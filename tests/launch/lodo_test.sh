#!/usr/bin/env bash
# `instructflip lodo` and `instructflip demo` end to end on a tiny 4-domain store:
#  - bad protocols and re-planning a run directory differently are refused;
#  - --dry-run plans without running; a run trains and tests every job, writes
#    the aggregated table (lodo.md/.json, 4 held-out targets, mean row, cost)
#    and the report;
#  - a run interrupted during its second job (SIGUSR1 to the driver) exits 3;
#    re-running does not redo the finished job and resumes the interrupted one;
#  - the demo (shortened) prints the table and the report path.
# Usage: lodo_test.sh PATH/TO/instructflip
set -euo pipefail
bin=$(realpath "$1")
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$(dirname "$0")/../.."   # the source tree: configs/ resolve from here

"$bin" synth --out "$tmp/store" --domains 4 --per-domain 48 --size 64 --seed 3 > /dev/null
# Short jobs: 4 steps of batch 4 per rank, a 20-step T5 warm-up.
short=(--set data.store="$tmp/store" --set total_steps=4 --set batch_per_rank=4 --set checkpoint.every=1
       --set log_every=1 --set data.loader_threads=1 --set schedule.pct_start=0.5 --set model.t5_warmup.steps=20)
lines() { grep -c '"step"' "$1"; }  # step records of a metrics.jsonl

# Bad input: each refused with its reason, nothing planned.
cat > "$tmp/bad.yaml" <<EOF
name: bad
train_config: configs/train/synthetic_tiny.yaml
jobs:
  - {name: A, train: [synA, synB], test: [synB]}
EOF
out=$("$bin" lodo --protocol "$tmp/bad.yaml" --run-dir "$tmp/bad" --set data.store="$tmp/store" 2>&1) && fail "a target among the training domains was accepted"
grep -q "target 'synB' is also a training domain" <<< "$out" || fail "unclear error: $out"
sed -i 's/test: \[synB\]/test: [synZ]/' "$tmp/bad.yaml"
out=$("$bin" lodo --protocol "$tmp/bad.yaml" --run-dir "$tmp/bad" --set data.store="$tmp/store" 2>&1) && fail "an unknown target domain was accepted"
grep -q "synZ" <<< "$out" || fail "unclear error for an unknown domain: $out"
sed -i 's/^jobs:/ranks: 1\ntypo: 3\njobs:/' "$tmp/bad.yaml"
out=$("$bin" lodo --protocol "$tmp/bad.yaml" --run-dir "$tmp/bad" --set data.store="$tmp/store" 2>&1) && fail "an unknown protocol key was accepted"
grep -q "typo" <<< "$out" || fail "unclear error for an unknown key: $out"
[ ! -e "$tmp/bad/protocol.yaml" ] || fail "a refused protocol was planned"

# --dry-run: the plan only, checked and printed; nothing is written.
out=$("$bin" lodo --protocol synthetic_lodo --run-dir "$tmp/run" --ranks 1 "${short[@]}" --dry-run)
grep -q "\[3\] ABC_to_D: train synA+synB+synC -> test synD (to run)" <<< "$out" || fail "plan: $out"
[ ! -e "$tmp/run" ] || fail "--dry-run wrote into the run directory: $(ls -R "$tmp/run")"

# A full run (1 rank per job), then the aggregated table.
INSTRUCTFLIP_PROGRESS_EVERY_S=0 "$bin" lodo --protocol synthetic_lodo --run-dir "$tmp/run" --ranks 1 "${short[@]}" \
  > "$tmp/run.log" 2>&1 || fail "lodo run: $(tail -5 "$tmp/run.log")"
# The driver relays each running job's progress from its log (every 10 s; here every poll).
grep -Eq "^lodo: \[0\] BCD_to_A: (step [0-9]+/4|T5 warm-up|eval synA|validation syn[BCD]).* \([0-9]+ s\)$" "$tmp/run.log" ||
  fail "the driver relayed no progress of job 0: $(head -20 "$tmp/run.log")"
# Re-planning it otherwise is refused, also as a dry run, and changes nothing.
versions=$(cat "$tmp/run/versions.txt")
for extra in "" --dry-run; do
  out=$("$bin" lodo --protocol synthetic_lodo --run-dir "$tmp/run" --ranks 1 "${short[@]}" --set total_steps=5 $extra 2>&1) &&
    fail "re-planning with other overrides was accepted ($extra)"
  grep -q "was planned with another protocol" <<< "$out" || fail "unclear re-plan error: $out"
done
[ "$(cat "$tmp/run/versions.txt")" = "$versions" ] || fail "a refused re-plan wrote versions.txt"
# --aggregate rewrites the tables of the run as planned: any other flag is refused (--dry-run wrote them).
before=$(cat "$tmp/run/lodo.json")
out=$("$bin" lodo --run-dir "$tmp/run" --aggregate --dry-run 2>&1) && fail "--aggregate --dry-run was accepted"
grep -q "give only --run-dir" <<< "$out" || fail "unclear --aggregate error: $out"
[ "$(cat "$tmp/run/lodo.json")" = "$before" ] || fail "a refused --aggregate rewrote lodo.json"
for f in lodo.md lodo.json report.html; do [ -s "$tmp/run/$f" ] || fail "no $f"; done
python3 - "$tmp/run" <<'PY' || fail "lodo.json is not the aggregated table"
import json, sys, os
run = sys.argv[1]
t = json.load(open(os.path.join(run, "lodo.json")))
assert t["protocol"] == "synthetic_lodo"
assert t["style_question"] == "uniform" and t["training_style_question"] == "label_blind", t
assert t["reference_mode"]["threshold_mode"].startswith("oracle:"), t["reference_mode"]
assert [r["target"] for r in t["rows"]] == ["synA", "synB", "synC", "synD"], t["rows"]
assert [r["target"] for r in t["reference_mode"]["rows"]] == ["synA", "synB", "synC", "synD"]
for r in t["rows"]:
    assert r["target"] not in r["train_domains"]
    res = json.load(open(os.path.join(run, "jobs", r["job"], "result.json")))
    assert res["threshold_mode"].startswith("EER threshold of the source domains' held-out validation videos")
    assert abs(r["threshold"] - res["threshold"]) < 1e-12, (r, res)   # HTER at the validation threshold
    assert res["checkpoint"] == "step-00000004"
mean_hter = sum(r["hter"] for r in t["rows"]) / 4
assert abs(t["mean"]["hter"] - mean_hter) < 1e-9, (t["mean"], mean_hter)
c = t["cost"]
assert c["trainings"] == 4 and c["targets"] == 4 and c["total_wall_s"] > 0 and c["total_rank_hours"] > 0, c
assert abs(c["saving_vs_one_training_per_target"] - 1.0) < 1e-9, c
PY
grep -q "| \*\*mean\*\* |" "$tmp/run/lodo.md" || fail "lodo.md has no mean row"
grep -q "EER threshold on held-out videos of each job.s source domains" "$tmp/run/lodo.md" || fail "lodo.md does not state the threshold mode"
grep -q "Style question at test: uniform (never from the label)" "$tmp/run/lodo.md" || fail "lodo.md does not state the style question"
grep -q "oracle" "$tmp/run/lodo.md" || fail "lodo.md does not label the target-chosen thresholds oracle"
[ -s "$tmp/run/jobs/BCD_to_A/eval/explanations.jsonl" ] || fail "no explanations"
# The job's TensorBoard has its evaluation: metrics as scalars, explained cue maps as images.
for tag in validation/hter test/synA/hter test/synA/auc test/synA/tpr_at_fpr_1pct explain/synA/0_cue; do
  grep -aq "$tag" "$tmp/run/jobs/BCD_to_A"/events.out.tfevents.* || fail "the job's TensorBoard lacks $tag"
done
# One T5 warm-up for the whole run: the first job computes it, the others load it.
grep -q "T5 warm-up" "$tmp/run/jobs/BCD_to_A/log.txt" || fail "the first job did not warm up its T5"
version=$("$bin" --version)
grep -q "^$version at .*: lodo plan of protocol synthetic_lodo$" "$tmp/run/versions.txt" || fail "run versions.txt"
grep -q "^$version at .*: lodo job BCD_to_A, 1 rank(s)$" "$tmp/run/jobs/BCD_to_A/versions.txt" || fail "job versions.txt"
! grep -q "T5 warm-up.*(from " "$tmp/run/jobs/BCD_to_A/log.txt" || fail "the first job found a warm-up it cannot have"
for job in ACD_to_B ABD_to_C ABC_to_D; do
  grep -q "T5 warm-up.*(from $tmp/run/cache)" "$tmp/run/jobs/$job/log.txt" || fail "$job computed its T5 warm-up again"
done
# A finished job is a model to score one's own images with: predict and export
# take its selected checkpoint and the threshold it chose without target data.
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"P6\n9 7\n255\n" + bytes(range(189)))' "$tmp/face.ppm"
"$bin" predict --model "$tmp/run/jobs/BCD_to_A" --json --quiet "$tmp/face.ppm" > "$tmp/predicted.json" ||
  fail "predict with a LODO job"
"$bin" export --model "$tmp/run/jobs/BCD_to_A" --out "$tmp/job-bundle" > /dev/null || fail "export of a LODO job"
python3 - "$tmp/run/jobs/BCD_to_A/result.json" "$tmp/predicted.json" "$tmp/job-bundle/bundle.json" <<'PY' ||
import json, sys
r, p, b = (json.load(open(f)) for f in sys.argv[1:4])
assert p["threshold"] == r["threshold"] == b["threshold"] and p["threshold_rule"] == r["threshold_mode"] == b["threshold_rule"], (r, p, b)
assert "validation" in p["threshold_rule"] and r["checkpoint"] in p["model"], p
assert 0 <= p["predictions"][0]["spoof_probability"] <= 1, p
PY
  fail "predict/export of a LODO job do not use the job's threshold"

# One training for three targets (the shape of ca_unified): the cost table
# shows the saving over one training per target as a number above 1. Scored
# as the reference scores targets (targets_split: all): every sample of each,
# more videos than the test split the run above scored, and the table says so.
cat > "$tmp/unified.yaml" <<EOF
name: unified
train_config: configs/train/synthetic_tiny.yaml
ranks: 1
targets_split: all
jobs:
  - {name: A_to_all, train: [synA], test: [synB, synC, synD]}
EOF
"$bin" lodo --protocol "$tmp/unified.yaml" --run-dir "$tmp/unified" "${short[@]}" > "$tmp/unified.log" 2>&1 ||
  fail "unified run: $(tail -5 "$tmp/unified.log")"
python3 - "$tmp/unified/lodo.json" "$tmp/run/lodo.json" <<'PY' || fail "the unified run's cost or scored samples"
import json, sys
t = json.load(open(sys.argv[1]))
assert [r["target"] for r in t["rows"]] == ["synB", "synC", "synD"], t["rows"]
test_only = {r["target"]: r["videos"] for r in json.load(open(sys.argv[2]))["rows"]}
assert t["targets_split"] == "all", t["targets_split"]
for r in t["rows"]:
    assert r["videos"] > test_only[r["target"]], (r["target"], r["videos"], test_only)
c = t["cost"]
assert c["trainings"] == 1 and c["targets"] == 3, c
train = c["jobs"][0]["train_rank_hours"]
expected = (3 * train + (c["total_rank_hours"] - train)) / c["total_rank_hours"]
assert 1.5 < c["saving_vs_one_training_per_target"] <= 3.0, c
assert abs(c["saving_vs_one_training_per_target"] - expected) < 1e-9, (c, expected)
PY
grep -q "Scored: every sample of each target (train and test splits)" "$tmp/unified/lodo.md" &&
  grep -q "Scored: the test split of each target" "$tmp/run/lodo.md" || fail "lodo.md does not say which samples were scored"

# Seeds, checkpoint selection and a seen-domain target in one run: each job
# twice (seeds 5, 6), evaluated at steps 2 and 4, the step with the lowest mean
# target HTER at oracle thresholds selected (labelled ORACLE everywhere), synA's
# own first 10 test samples scored beside the held-out synB, outside the mean.
cat > "$tmp/selected.yaml" <<EOF
name: selected
train_config: configs/train/synthetic_tiny.yaml
ranks: 1
eval_every: 2
selection: target_oracle
target_subsets: {synA: {split: test, first: 10}}
jobs:
  - {name: A_to_B, train: [synA], test: [synB, synA]}
EOF
"$bin" lodo --protocol "$tmp/selected.yaml" --run-dir "$tmp/selected" --seeds 5,6 "${short[@]}" > "$tmp/selected.log" 2>&1 ||
  fail "selected run: $(tail -5 "$tmp/selected.log")"
python3 - "$tmp/selected" <<'PY' || fail "seeds, selection or the seen-domain target"
import json, os, sys, filecmp
run = sys.argv[1]
t = json.load(open(os.path.join(run, "lodo.json")))
assert [r["job"] for r in t["rows"]] == ["A_to_B_seed5", "A_to_B_seed5", "A_to_B_seed6", "A_to_B_seed6"], t["rows"]
assert [r["seen_domain"] for r in t["rows"]] == [False, True, False, True], t["rows"]
assert t["rows"][1]["videos"] <= 10, t["rows"][1]
assert t["checkpoint_rule"].startswith("ORACLE:"), t["checkpoint_rule"]
assert t["over_seeds"]["seeds"] == [5, 6], t["over_seeds"]
hters = [r["hter"] for r in t["rows"] if not r["seen_domain"]]
assert abs(t["over_seeds"]["mean"]["hter"]["mean"] - sum(hters) / 2) < 1e-9, (t["over_seeds"], hters)
for job in ("A_to_B_seed5", "A_to_B_seed6"):
    res = json.load(open(os.path.join(run, "jobs", job, "result.json")))
    steps = res["evaluated_steps"]
    assert [s["step"] for s in steps] == [2, 4], steps
    best = min(steps, key=lambda s: (s["mean_target_hter_oracle"], s["step"]))
    assert res["step"] == best["step"] and res["selection"] == "target_oracle", (res["step"], steps)
    chosen = os.path.join(run, "jobs", job, "steps", "step-%08d" % res["step"], "eval", "metrics.json")
    assert filecmp.cmp(chosen, os.path.join(run, "jobs", job, "eval", "metrics.json"), shallow=False)
assert [(r["target"], r["seen_domain"]) for r in t["over_seeds"]["rows"]] == [("synB", False), ("synA", True)], t["over_seeds"]
for job in ("A_to_B_seed5", "A_to_B_seed6"):  # the job's own table leaves the seen domain out of its mean too
    m = json.load(open(os.path.join(run, "jobs", job, "eval", "metrics.json")))
    assert m["seen_domains"] == ["synA"] and m["mean"]["hter"] == m["domains"]["synB"]["hter"], m
cfg = [l for l in open(os.path.join(run, "jobs", "A_to_B_seed6", "config.yaml")) if l.startswith("seed:")]
assert cfg == ["seed: 6\n"], cfg
PY
grep -q "Checkpoint: ORACLE" "$tmp/selected/lodo.md" && grep -q "Over seeds 5, 6" "$tmp/selected/lodo.md" &&
  grep -q "synA (seen domain, not in the mean)" "$tmp/selected/lodo.md" || fail "lodo.md: $(cat "$tmp/selected/lodo.md")"
grep -q "synA (seen domain, not in the mean)" "$tmp/selected/report.html" || fail "report.html does not mark the seen domain"

# Re-running a finished run trains nothing and rebuilds the same table.
before=$(lines "$tmp/run/jobs/ABD_to_C/metrics.jsonl")
"$bin" lodo --run-dir "$tmp/run" > "$tmp/rerun.log" 2>&1 || fail "re-run: $(tail -3 "$tmp/rerun.log")"
[ "$(grep -c "finished before, skipped" "$tmp/rerun.log")" = 4 ] || fail "re-run did not skip 4 jobs: $(cat "$tmp/rerun.log")"
[ "$(lines "$tmp/run/jobs/ABD_to_C/metrics.jsonl")" = "$before" ] || fail "re-run retrained a finished job"

# Interrupted during the second job: exit 3; re-run skips job 0 and resumes job 1.
long=("${short[@]}" --set total_steps=40)
"$bin" lodo --protocol synthetic_lodo --run-dir "$tmp/cut" --ranks 1 "${long[@]}" > "$tmp/cut.log" 2>&1 &
driver=$!
for _ in $(seq 1 600); do
  [ -f "$tmp/cut/jobs/ACD_to_B/metrics.jsonl" ] && [ "$(lines "$tmp/cut/jobs/ACD_to_B/metrics.jsonl")" -ge 3 ] && break
  sleep 0.2
done
kill -USR1 "$driver"
code=0; wait "$driver" || code=$?
[ "$code" = 3 ] || fail "interrupted lodo exited $code, not 3: $(tail -5 "$tmp/cut.log")"
[ -f "$tmp/cut/jobs/BCD_to_A/result.json" ] || fail "job 0 should have finished before the interruption"
[ ! -f "$tmp/cut/jobs/ACD_to_B/result.json" ] || fail "job 1 finished despite the interruption"
job0_lines=$(lines "$tmp/cut/jobs/BCD_to_A/metrics.jsonl")
"$bin" lodo --protocol synthetic_lodo --run-dir "$tmp/cut" --ranks 1 "${long[@]}" > "$tmp/cut2.log" 2>&1 ||
  fail "resumed lodo: $(tail -5 "$tmp/cut2.log")"
grep -q "\[0\] BCD_to_A: finished before, skipped" "$tmp/cut2.log" || fail "job 0 was not skipped"
[ "$(lines "$tmp/cut/jobs/BCD_to_A/metrics.jsonl")" = "$job0_lines" ] || fail "job 0 was retrained"
grep -q "resumed from .*ACD_to_B/checkpoints/step-" "$tmp/cut/jobs/ACD_to_B/log.txt" || fail "job 1 did not resume"
[ -s "$tmp/cut/lodo.md" ] || fail "no table after the resumed run"

# The demo, shortened (the README runs it with its defaults).
"$bin" demo --out "$tmp/demo" --per-domain 48 --ranks 1 --set total_steps=4 --set batch_per_rank=4 \
    --set schedule.pct_start=0.5 --set model.t5_warmup.steps=20 > "$tmp/demo.log" 2>&1 || fail "demo: $(tail -5 "$tmp/demo.log")"
grep -q "| \*\*mean\*\* |" "$tmp/demo.log" || fail "the demo did not print the table"
grep -q "open $tmp/demo/lodo/report.html" "$tmp/demo.log" || fail "the demo did not print the report path"
[ -s "$tmp/demo/lodo/report.html" ] || fail "the demo wrote no report"
echo "lodo_test: all checks passed"
