#!/usr/bin/env bash
# The style-question experiment of the "honest evaluation" change (not a ctest
# test: ~20 minutes on 2 cores). For each training rule (reference,
# label_blind) and training seed, one demo run (synthetic_lodo, 4 jobs, 2 ranks)
# scored label-blind with eval.style_question=uniform; then the same checkpoints
# re-scored with eval.style_question=ensemble (validation threshold and test
# alike). Prints one row per (rule, scoring, seed) and the mean +- std over seeds.
# Usage: style_question_lodo.sh PATH/TO/instructflip OUT_DIR [SEEDS...]
set -euo pipefail
bin=$(realpath "$1")
out=$(realpath -m "$2")
shift 2
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
cd "$(dirname "$0")/../.."   # configs/ resolve from the source tree
mkdir -p "$out"
[ -e "$out/store/manifest.json" ] || "$bin" synth --out "$out/store" --domains 4 --per-domain 400 --size 64 --seed 0 > /dev/null
for rule in reference label_blind; do
  for seed in "${seeds[@]}"; do
    run="$out/$rule-seed$seed"
    "$bin" lodo --protocol synthetic_lodo --run-dir "$run/uniform" --set data.store="$out/store" \
      --set seed="$seed" --set data.style_question="$rule" >> "$run.uniform.log" 2>&1
    # The same checkpoints, scored again with the ensemble: a new run directory
    # holding only the final checkpoints, so each job skips training.
    rm -rf "$run/ensemble"
    mkdir -p "$run/ensemble/jobs"
    for job in "$run/uniform/jobs/"*/; do
      name=$(basename "$job")
      mkdir -p "$run/ensemble/jobs/$name/checkpoints"
      final=$(cat "$job/checkpoints/latest")
      cp -r "$job/checkpoints/$final" "$run/ensemble/jobs/$name/checkpoints/"
      echo "$final" > "$run/ensemble/jobs/$name/checkpoints/latest"
    done
    "$bin" lodo --protocol synthetic_lodo --run-dir "$run/ensemble" --set data.store="$out/store" \
      --set seed="$seed" --set data.style_question="$rule" --set eval.style_question=ensemble \
      > "$run.ensemble.log" 2>&1
  done
done
/usr/bin/python3 - "$out" "${seeds[@]}" <<'PY'
import json, os, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
print("| training rule | scoring | seed | mean HTER % | mean AUC % | oracle-threshold HTER % |")
print("|---|---|---|---|---|---|")
summary = []
for rule in ("reference", "label_blind"):
    for scoring in ("uniform", "ensemble"):
        hters, aucs = [], []
        for seed in seeds:
            t = json.load(open(os.path.join(out, f"{rule}-seed{seed}", scoring, "lodo.json")))
            assert t["style_question"] == scoring and t["training_style_question"] == rule, t
            hters.append(t["mean"]["hter"]); aucs.append(t["mean"]["auc"])
            print(f"| {rule} | {scoring} | {seed} | {t['mean']['hter']:.2f} | {t['mean']['auc']:.2f} | "
                  f"{t['reference_mode']['mean']['hter']:.2f} |")
        summary.append((rule, scoring, hters, aucs))
print()
print("| training rule | scoring | HTER % (mean ± std) | AUC % (mean ± std) |")
print("|---|---|---|---|")
for rule, scoring, h, a in summary:
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"| {rule} | {scoring} | {statistics.mean(h):.2f} ± {sd(h):.2f} | {statistics.mean(a):.2f} ± {sd(a):.2f} |")
PY
