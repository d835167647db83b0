#!/usr/bin/env bash
# End-to-end checks of the `instructflip` command on a tiny synthetic store:
# synth -> store info/verify -> bench data (JSON keys and sane values), plus
# the CLI's error paths. Usage: cli_test.sh PATH/TO/instructflip
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" help | grep -q "synth" || fail "help does not list synth"
"$bin" help | grep -q "bench" || fail "help does not list bench"
# A subcommand's own help: its flags with defaults, exit 0 (not gflags' dump).
for h in --help -h; do
  "$bin" train $h > "$tmp/help.txt" 2>&1 || fail "train $h exited non-zero"
  grep -q -- "--run-dir" "$tmp/help.txt" && grep -q "(default: auto)" "$tmp/help.txt" || fail "train $h: $(head -5 "$tmp/help.txt")"
  [ "$(wc -l < "$tmp/help.txt")" -lt 30 ] || fail "train $h printed $(wc -l < "$tmp/help.txt") lines"
done
"$bin" --version | grep -Eq "^instructflip [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]{12}(-dirty)?|unknown)\)$" || fail "--version: $("$bin" --version)"
# An unknown flag names the nearest one the subcommand takes; exit 2, no trace.
set +e
"$bin" synth --out "$tmp/typo" --per-domian 3 > /dev/null 2> "$tmp/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "did you mean --per-domain?" "$tmp/err.txt" || fail "unknown flag: rc $rc, $(cat "$tmp/err.txt")"
[ ! -e "$tmp/typo" ] || fail "a refused synth wrote output"
# The flag tables drive the rest: a missing required flag, a value of the wrong
# type, a mode left out: exit 2 with one line naming it, nothing written.
expect_error() {  # expect_error TEXT ARGS...
  local text=$1; shift
  set +e
  "$bin" "$@" > /dev/null 2> "$tmp/err.txt"; local rc=$?
  set -e
  [ "$rc" = 2 ] && [ "$(wc -l < "$tmp/err.txt")" = 1 ] && grep -qF -- "$text" "$tmp/err.txt" ||
    fail "$*: rc $rc, $(cat "$tmp/err.txt")"
}
expect_error "'synth' needs --out DIR" synth --domains 2
expect_error "--domains must be a whole number, got 'two'" synth --out "$tmp/typo" --domains two
expect_error "--seed must be a non-negative whole number, got '-4'" synth --out "$tmp/typo" --seed -4
expect_error "'bench' needs a mode: data, step, allreduce" bench --json
expect_error "'ingest' needs --format celeba|list|csv" ingest --input x --out "$tmp/typo"
expect_error "'synth' takes no --set" synth --out "$tmp/typo" --set a=1
# A threshold is a probability; "not given" (each domain's EER threshold) has no magic value.
expect_error "--threshold must be a number in [0, 1], got 'nan'" metrics --scores "$tmp/none.csv" --threshold nan
expect_error "--threshold must be a number in [0, 1], got '-1'" metrics --scores "$tmp/none.csv" --threshold -1
expect_error "--job must be >= 0, got -1" lodo --run-dir "$tmp/typo" --job -1
expect_error "--explain must be >= 0, got -2" eval --config "$tmp/none.yaml" --checkpoint "$tmp/none" --targets a \
  --out "$tmp/typo" --explain -2
[ ! -e "$tmp/typo" ] || fail "a refused command wrote output"
# ingest --dry-run reads the list, prints the counts, opens no image, writes nothing.
printf 'live/a.jpg 0\nspoof/b.jpg 1\nspoof/c.jpg 1\nlive/a.jpg 0\n' > "$tmp/list.txt"
"$bin" ingest --format list --input "$tmp/list.txt" --domain lab --split test --out "$tmp/dry" --dry-run --json \
  > "$tmp/dry.json" || fail "ingest --dry-run exited non-zero"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["inputs"]==3 and d["videos"]==0 and d["repeats"]==1 and d["domains"]["lab"]["test"]=={"live":1,"spoof":2}, d' \
  "$tmp/dry.json" || fail "ingest --dry-run: $(cat "$tmp/dry.json")"
[ ! -e "$tmp/dry" ] || fail "ingest --dry-run wrote the store"
"$bin" bench --help | grep -q "usage: instructflip bench allreduce" || fail "bench --help lacks its modes"
"$bin" demo --help | grep -q -- "--out DIR .*(default: demo-run)" || fail "demo --help lacks its own default"

# Long work shows progress on stderr (every 10 s; INSTRUCTFLIP_PROGRESS_EVERY_S=0: every update):
# done/total, rate and ETA, a closing line; JSON lines with --json; nothing with --quiet.
INSTRUCTFLIP_PROGRESS_EVERY_S=0 "$bin" synth --out "$tmp/p1" --domains 2 --per-domain 8 --size 32 2> "$tmp/progress.txt" > /dev/null
grep -Eq "^synth: 5/16 images, [0-9.]+/s, ETA [0-9]+ s$" "$tmp/progress.txt" && grep -q "^synth: 16/16 images, done in" "$tmp/progress.txt" ||
  fail "synth progress: $(cat "$tmp/progress.txt")"
INSTRUCTFLIP_PROGRESS_EVERY_S=0 "$bin" store verify "$tmp/p1" --json 2> "$tmp/progress.json" > /dev/null
python3 - "$tmp/progress.json" <<'PY' || fail "store verify --json progress: $(cat "$tmp/progress.json")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
samples = [l for l in lines if l["unit"] == "samples"]
assert [l["done"] for l in samples if not l["final"]] == list(range(1, 17)) and samples[-1]["final"], lines
assert all(l["progress"] == "store verify" and l["total"] in (1, 16) and l["eta_s"] >= 0 for l in lines), lines
PY
INSTRUCTFLIP_PROGRESS_EVERY_S=0 "$bin" synth --out "$tmp/p2" --domains 2 --per-domain 8 --size 32 --quiet 2> "$tmp/quiet.txt" > /dev/null
[ ! -s "$tmp/quiet.txt" ] || fail "synth --quiet printed: $(cat "$tmp/quiet.txt")"
"$bin" synth --out "$tmp/p3" --domains 2 --per-domain 8 --size 32 2> "$tmp/short.txt" > /dev/null
[ ! -s "$tmp/short.txt" ] || fail "a second of work printed progress: $(cat "$tmp/short.txt")"
"$bin" synth --out "$tmp/s" --domains 2 --per-domain 24 --size 48 --seed 3 > "$tmp/synth.txt"
grep -q "synA" "$tmp/synth.txt" || fail "synth summary lacks domain synA"
"$bin" store info "$tmp/s" --json > "$tmp/info.json"
python3 - "$tmp/info.json" <<'PY' 2>/dev/null || grep -q '"num_samples": 48' "$tmp/info.json" || fail "store info count"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["num_samples"] == 48, d
assert set(d["domains"]) == {"synA", "synB"}, d
PY
# Per-value counts: each attribute's values add up to the domain's samples; synth fills them all.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["values"]
assert set(d) == {"synA", "synB"}, d
for dom in d.values():
    assert set(dom) == {"spoof_type", "illumination", "environment", "camera_quality"}, dom
    assert all(sum(v.values()) == 24 for v in dom.values()), dom
    assert "unknown" not in dom["camera_quality"] and set(dom["camera_quality"]) <= {"low", "medium", "high"}, dom' \
  "$tmp/info.json" || fail "store info per-value counts: $(cat "$tmp/info.json")"
"$bin" store info "$tmp/s" | grep -Eq "^synA +camera_quality( +[a-z_0-9]+ [0-9]+)+$" || fail "store info text lacks per-value counts"
"$bin" store verify "$tmp/s" | grep -q "OK" || fail "verify of a fresh store"

# Same seed => byte-identical store; different thread count too.
"$bin" synth --out "$tmp/s2" --domains 2 --per-domain 24 --size 48 --seed 3 --threads 1 > /dev/null
cmp "$tmp/s/shard-00000.h5" "$tmp/s2/shard-00000.h5" || fail "synth is not deterministic"

# Damage one byte in the middle of the shard: verify names the shard, exit 1.
size=$(stat -c %s "$tmp/s/shard-00000.h5")
printf '\xff' | dd of="$tmp/s/shard-00000.h5" bs=1 seek=$((size / 2)) conv=notrunc status=none
set +e
"$bin" store verify "$tmp/s" > "$tmp/verify.txt"; rc=$?
set -e
[ "$rc" = 1 ] || fail "verify of a damaged store exited $rc"
grep -q "shard-00000.h5" "$tmp/verify.txt" || fail "verify does not name the shard"

# Errors: one line, exit 2, naming what is wrong.
set +e
"$bin" synth --out "$tmp/s2" --per-domain 24 > /dev/null 2> "$tmp/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] || fail "synth over an existing store exited $rc"
grep -q "already holds a store" "$tmp/err.txt" || fail "no clear error for an existing store"
set +e
"$bin" store info "$tmp/s2" --threads 3 > /dev/null 2> "$tmp/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "flag --threads is not accepted" "$tmp/err.txt" || fail "foreign flag accepted"
set +e
"$bin" frobnicate > /dev/null 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown subcommand exited $rc"

# bench data: JSON with the documented keys, positive rates.
"$bin" bench data --images 64 --epochs 1 --size 64 --threads 2 --json > "$tmp/bench.json"
for key in threads loader_images_per_s loader_images_per_s_per_thread baseline_images_per_s ratio; do
  grep -q "\"$key\"" "$tmp/bench.json" || fail "bench JSON lacks $key"
done
grep -q '"threads":2' "$tmp/bench.json" || fail "bench JSON threads"
# Per encoding: the same faces as JPEG and as lossless PNG, PNG the larger store.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d["per_encoding"]
assert set(e) == {"jpeg", "png"} and all(v["loader_images_per_s"] > 0 for v in e.values()), e
assert e["png"]["store_bytes"] > e["jpeg"]["store_bytes"] > 0, e
assert abs(d["png_vs_jpeg_loader_speed"] - e["png"]["loader_images_per_s"] / e["jpeg"]["loader_images_per_s"]) < 1e-9, d' \
  "$tmp/bench.json" || fail "bench data per encoding: $(cat "$tmp/bench.json")"
# metrics: the hand-computed example of tests/trainer/metrics_test.cc, two domains.
cat > "$tmp/scores.csv" <<CSV
score,label,video_id,domain
0.12345,0,1,alpha
0.42345,0,2,alpha
0.37345,1,3,alpha
0.81345,1,4,alpha
0.2,0,5,beta
0.9,1,6,beta
CSV
"$bin" metrics --scores "$tmp/scores.csv" --json > "$tmp/metrics.json"
python3 - "$tmp/metrics.json" <<'PY' || fail "metrics JSON values"
import json, sys
d = json.load(open(sys.argv[1]))
a, b, m = d["domains"]["alpha"], d["domains"]["beta"], d["mean"]
assert abs(a["auc"] - 75) < 1e-9 and abs(a["eer"] - 50) < 1e-9 and abs(a["tpr_at_fpr_1pct"] - 50) < 1e-9, a
assert abs(b["auc"] - 100) < 1e-9 and abs(b["hter"]) < 1e-9, b
assert abs(m["auc"] - 87.5) < 1e-9 and abs(m["hter"] - 25) < 1e-9, m
PY
"$bin" metrics --scores "$tmp/scores.csv" > "$tmp/metrics.md"
# videos, HTER, AUC, TPR@FPR=1%, EER, ACC: the column order of every metrics table.
grep -q "| alpha | 4 | 50.00 | 75.00 | 50.00 | 50.00 | 50.00 |" "$tmp/metrics.md" || fail "metrics Markdown table: $(cat "$tmp/metrics.md")"
# The same scores in eval's scores.csv layout (sample_index column), with named
# videos of two frames each (frame scores averaged per video): same metrics.
cat > "$tmp/named.csv" <<CSV
score,label,video_id,domain,sample_index
0.12345,0,msu_real_client001,alpha,0
0.12345,0,msu_real_client001,alpha,1
0.42345,0,msu_real_client002,alpha,2
0.37345,1,msu_attack_client001,alpha,3
0.80345,1,msu_attack_client002,alpha,4
0.82345,1,msu_attack_client002,alpha,5
0.2,0,msu_real_client001,beta,6
0.9,1,7,beta,7
CSV
"$bin" metrics --scores "$tmp/named.csv" --json > "$tmp/named.json" || fail "metrics rejects eval's scores.csv layout"
python3 - "$tmp/metrics.json" "$tmp/named.json" <<'PY' || fail "metrics of named videos differ"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for d in ("alpha", "beta"):
    for k in ("videos", "auc", "eer", "hter", "tpr_at_fpr_1pct"):
        assert abs(a["domains"][d][k] - b["domains"][d][k]) < 1e-9, (d, k, a["domains"][d][k], b["domains"][d][k])
PY
printf 'score,label,video_id,sample_index\n0.5,1,v1,x\n' > "$tmp/bad_index.csv"
set +e
"$bin" metrics --scores "$tmp/bad_index.csv" > /dev/null 2> "$tmp/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "bad_index.csv:2" "$tmp/err.txt" || fail "malformed sample_index not named: $(cat "$tmp/err.txt")"
printf 'score,label,video_id\n0.5,1,1\n0.7,maybe,2\n' > "$tmp/bad.csv"
set +e
"$bin" metrics --scores "$tmp/bad.csv" > /dev/null 2> "$tmp/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "bad.csv:3: label 'maybe'" "$tmp/err.txt" || fail "malformed CSV line not named: $(cat "$tmp/err.txt")"
# A video labelled both ways is named by its file, line and own id; a spreadsheet's byte order mark is read.
printf 'score,label,video_id\n0.5,1,a\n0.7,0,b\n0.6,0,a\n' > "$tmp/mixed.csv"
expect_error "mixed.csv:4: video 'a' (domain all) is labelled 0 here and 1 at line 2" metrics --scores "$tmp/mixed.csv"
printf '\xef\xbb\xbfscore,label,video_id\n0.5,1,a\n0.2,0,b\n' > "$tmp/bom.csv"
"$bin" metrics --scores "$tmp/bom.csv" > /dev/null 2> "$tmp/err.txt" || fail "a CSV with a byte order mark: $(cat "$tmp/err.txt")"
echo "cli_test: all checks passed"
