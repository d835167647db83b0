#!/usr/bin/env bash
# `instructflip report` on a fabricated two-job LODO run, rendered by a real
# browser: Debian's chromium (headless) must load the page, its DOM must hold
# the metrics table's mean row, the SVG charts and the embedded PNGs (and no
# element injected through a file string), and a screenshot must come out.
# Usage: report_render_test.sh PATH/TO/instructflip
#   REPORT_CMD="cmd args" replaces "PATH/TO/instructflip report" (the run
#   directory is appended), e.g. to check a stand-alone WriteReport driver;
#   REPORT_KEEP=DIR keeps a copy of the page and the screenshot there.
# Exit 77 (ctest SKIP_RETURN_CODE) when chromium is not installed.
set -euo pipefail
bin=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v chromium > /dev/null; then
  echo "SKIP: chromium not installed"
  exit 77
fi
if [ -n "${REPORT_CMD:-}" ]; then
  read -r -a report <<< "$REPORT_CMD"
else
  [ -n "$bin" ] || fail "usage: $0 PATH/TO/instructflip"
  report=("$bin" report)
fi

# Fabricate the run: lodo.json (with seeds), and per job result.json,
# metrics.jsonl (with a resume and a torn line), eval/metrics.json,
# eval/scores.csv, eval/roc_<target>.csv, eval/explanations.jsonl and real PNGs
# (zlib + struct).
run=$tmp/run
python3 - "$run" <<'PY'
import json, os, struct, sys, zlib

run = sys.argv[1]

def png(path, size, shade):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\0" + bytes(v for x in range(size) for v in ((shade + 30 * x) % 256, (20 * y) % 256, 255 - shade))
                    for y in range(size))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def metrics(hter, auc):
    return {"videos": 12, "auc": auc, "eer": 8.3, "hter": hter, "acc": 95.0, "tpr_at_fpr_1pct": 60.0,
            "threshold": 0.41, "apcer": 1.0, "bpcer": 2.0, "acer": 1.5}

jobs = [("BCD_to_A", "synA", ["synB", "synC", "synD"], 5.0), ("ACD_to_B", "synB", ["synA", "synC", "synD"], 7.5)]
rows = [dict(job=j, target=t, train_domains=d, **metrics(h, 90.0 if j == "BCD_to_A" else None)) for j, t, d, h in jobs]
lodo = {
    "protocol": "synthetic_lodo",
    "threshold_mode": "validation: EER threshold on held-out videos of the source domains",
    "checkpoint_rule": "final step (chosen without target data)",
    "rows": rows,
    "mean": metrics(6.25, 90.0),
    "reference_mode": {"threshold_mode": "each target's own EER threshold (the reference's; uses target labels)",
                       "rows": rows, "mean": metrics(6.25, 90.0)},
    "over_seeds": {"seeds": [2, 3],
                   "rows": [{"job": j, "target": t, "hter": {"mean": h, "std": 1.25}, "auc": {"mean": 90.0, "std": 2.5},
                             "tpr_at_fpr_1pct": {"mean": 60.0, "std": None}, "seen_domain": False} for j, t, _, h in jobs],
                   "mean": {"hter": {"mean": 6.25, "std": 0.75}, "auc": {"mean": 90.0, "std": 1.5},
                            "tpr_at_fpr_1pct": {"mean": 60.0, "std": 3.0}}},
    "cost": {"jobs": [{"job": j, "wall_s": 41.2, "ranks": 2, "rank_hours": 0.0229, "device": "cpu"} for j, *_ in jobs],
             "total_wall_s": 82.4, "total_rank_hours": 0.0458, "trainings": 2, "targets": 2,
             "rank_hours_per_target": 0.0229},
}
os.makedirs(run, exist_ok=True)
with open(os.path.join(run, "lodo.json"), "w") as f:
    json.dump(lodo, f, indent=2)

for k, (job, target, _, hter) in enumerate(jobs):
    d = os.path.join(run, "jobs", job)
    os.makedirs(os.path.join(d, "eval"), exist_ok=True)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        def record(step, bump=0.0):
            loss = 4.0 * 0.97 ** step + 0.3 + bump
            return json.dumps({"step": step, "loss": loss, "lr": 1e-4 * min(1.0, step / 20), "beta1": 0.9,
                               "grad_norm": 1.2, "loss_scale": 1, "images_per_s": 100.5, "data_wait_share": 0.01,
                               "eta_s": 30, "skipped": False, "loss_content_lm": loss * 0.3,
                               "loss_style_lm": loss * 0.35, "loss_classification": loss * 0.3,
                               "loss_cue": 0.05}) + "\n"
        for step in range(2, 62, 2):
            f.write(record(step, bump=5.0 if step > 40 else 0.0))  # diverges, is killed
        f.write('{"step": 62, "loss"\n')                             # torn last line
        for step in range(42, 102, 2):
            f.write(record(step))                                    # resumed from step 40
    with open(os.path.join(d, "eval", "metrics.json"), "w") as f:
        json.dump({"domains": {target: metrics(hter, 90.0)}, "mean": metrics(hter, 90.0),
                   "threshold_mode": "validation"}, f)
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump({"job": job, "checkpoint": "step-00000100", "threshold": 0.41, "validation": metrics(3.5, 97.0),
                   "threshold_mode": "EER threshold of the source domains' held-out validation videos (9 videos)"}, f)
    with open(os.path.join(d, "eval", "scores.csv"), "w") as f:
        f.write("score,label,video_id,domain,sample_index,spoof_type\n")
        for v in range(12):  # 6 live videos, 6 spoofs (photo, poster, a4 twice each), 2 frames each
            label, kind = (0, 0) if v < 6 else (1, 1 + v % 3)
            for frame in range(2):
                score = (0.1 + 0.05 * v) if label == 0 else (0.3 + 0.1 * (v - 6) + 0.01 * frame)
                f.write(f"{score:.3f},{label},{v},{target},{2 * v + frame},{kind}\n")
    with open(os.path.join(d, "eval", f"roc_{target}.csv"), "w") as f:
        f.write("fpr,tpr,threshold\n0,0,inf\n0,0.4,0.95\n0.1,0.7,0.8\n0.3,0.9,0.5\n1,1,0.01\n")
    with open(os.path.join(d, "eval", "explanations.jsonl"), "w") as f:
        for i in range(3):
            png(os.path.join(d, "eval", "explanations", target, f"{i:03d}_image.png"), 16, 40 * i + 20 * k)
            if i != 2:  # the last sample's cue map is missing
                png(os.path.join(d, "eval", "explanations", target, f"{i:03d}_cue.png"), 4, 100 + 40 * i)
            f.write(json.dumps({
                "domain": target, "index": i, "video_id": 17 + i, "label": i % 2, "score": 0.93 - 0.3 * i,
                "content_question": "What is the spoof type?",
                "content_answer": '<b id="injected">x</b>' if i == 1 else "(3) Poster",
                "content_expected": "(1) Print" if i == 2 else "(3) Poster",
                "style_question": "What is the illumination?", "style_answer": "(2) Strong",
                "style_expected": "No GT" if i == 0 else "(2) strong",
                "image": f"explanations/{target}/{i:03d}_image.png",
                "cue": f"explanations/{target}/{i:03d}_cue.png"}) + "\n")
PY

"${report[@]}" "$run" > "$tmp/report.txt" || fail "report exited non-zero"
page=$run/report.html
[ -s "$page" ] || fail "no $page"
echo "report.html: $(stat -c %s "$page") bytes"
if grep -Eq 'https?://' "$page"; then fail "the page references a URL"; fi

# Render headless. --dump-dom prints the DOM after load.
chrome=(timeout 180 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile"
        --no-first-run --disable-extensions)
"${chrome[@]}" --dump-dom "file://$page" > "$tmp/dom.html" 2> "$tmp/chromium.log" ||
  { cat "$tmp/chromium.log" >&2; fail "chromium --dump-dom failed"; }
grep -q '<tr class="mean"><td>mean</td>' "$tmp/dom.html" || fail "the DOM lacks the mean row"
grep -q '>6.25<' "$tmp/dom.html" || fail "the DOM lacks the mean HTER 6.25"
[ "$(grep -o '<svg' "$tmp/dom.html" | wc -l)" -eq 8 ] || fail "expected 8 SVG charts (4 per job)"
# What one reads at a glance: APCER/BPCER/ACER, the seeds' spread, each job's
# validation, its score histogram and per-attack errors, answers marked right or wrong.
for text in '>APCER</th>' '>ACER</th>' 'Over seeds 2, 3' '6.25 ± 0.75' 'Validation (the threshold' '>3.50<' \
            'Scores of synA (video means)' 'poster (APCER: called live)' 'live (BPCER: called spoof)' \
            '>50.00%<' 'class="right"' 'class="wrong"' 'expected: (1) Print' '(no ground truth)'; do
  grep -qF -- "$text" "$tmp/dom.html" || fail "the DOM lacks '$text'"
done
[ "$(grep -o 'src="data:image/png;base64,' "$tmp/dom.html" | wc -l)" -eq 10 ] || fail "expected 10 embedded PNGs"
grep -q '<b id="injected">' "$tmp/dom.html" && fail "a file string became an element"
grep -q '&lt;b id="injected"&gt;' "$tmp/dom.html" || fail "the escaped answer is not shown as text"
grep -q 'BCD_to_A' "$tmp/dom.html" && grep -q 'ACD_to_B' "$tmp/dom.html" || fail "a job is missing from the DOM"

"${chrome[@]}" --screenshot="$tmp/shot.png" --window-size=1200,3000 "file://$page" > /dev/null 2>> "$tmp/chromium.log" ||
  { cat "$tmp/chromium.log" >&2; fail "chromium --screenshot failed"; }
[ -f "$tmp/shot.png" ] || fail "no screenshot"
[ "$(head -c 8 "$tmp/shot.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "the screenshot is no PNG"
size=$(stat -c %s "$tmp/shot.png")
[ "$size" -gt 50000 ] || fail "the screenshot is only $size bytes (blank page?)"
[ -z "${REPORT_KEEP:-}" ] || cp "$page" "$tmp/shot.png" "$REPORT_KEEP"/
echo "OK: chromium rendered the report (screenshot $size bytes)"
