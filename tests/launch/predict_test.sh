#!/usr/bin/env bash
# `instructflip predict` and `export` end to end, after a tiny training run:
#  - predict's scores of image files equal eval's scores of the same pixels
#    ingested into a store (lossless PNG, the same checkpoint, rule and batch);
#  - a checkpoint without a stored threshold needs --threshold; nothing written;
#  - export writes a bundle (safetensors with format: pt, model.yaml, threshold,
#    rule, version) and a CLIPVisionModel directory; predict with the bundle
#    equals predict with the checkpoint; --explain adds the T5's answers;
#  - an unreadable file is reported in its row, the rest scored, exit 2;
#  - export refuses a non-empty output directory and leaves it as it was.
# Usage: predict_test.sh PATH/TO/instructflip
set -euo pipefail
bin=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$(dirname "$0")/../.."   # the source tree: configs/ resolve from here

# 1. A tiny model that scores with the ensemble rule (no per-sample key: eval's
# store index and predict's pixel CRC give the same questions).
"$bin" synth --out "$tmp/store" --domains 2 --per-domain 24 --size 64 --seed 1 > /dev/null
common=(--config configs/train/synthetic_tiny.yaml --set data.store="$tmp/store" --set "data.train_domains=[synA, synB]"
        --set total_steps=8 --set batch_per_rank=4 --set checkpoint.every=4 --set log_every=1
        --set data.loader_threads=1 --set schedule.pct_start=0.25 --set model.t5_warmup.steps=20
        --set eval.style_question=ensemble)
"$bin" train "${common[@]}" --run-dir "$tmp/run" > "$tmp/train.log" 2>&1 || fail "train: $(tail -3 "$tmp/train.log")"
checkpoint=$tmp/run/checkpoints/step-00000008

# 2. Six "faces" of several sizes (PPM: no encoder needed), in two folders.
mkdir -p "$tmp/img/sub"
python3 - "$tmp/img" <<'PY'
import random, sys
d = sys.argv[1]; r = random.Random(5)
for i in range(6):
    w, h = 80 + 8 * i, 72
    px = bytearray()
    for y in range(h):
        for x in range(w):
            px += bytes(((x * 7 + i * 40 + r.randrange(30)) % 256, (y * 5 + r.randrange(60)) % 256, (x * y + i * 13) % 256))
    open(f"{d}/{'sub/' if i % 2 else ''}face{i}.ppm", "wb").write(b"P6\n%d %d\n255\n" % (w, h) + bytes(px))
PY
# The same files ingested (lossless, at the model's size) and evaluated, in predict's order.
: > "$tmp/img/list.txt"
for f in face0 face2 face4 sub/face1 sub/face3 sub/face5; do echo "$f.ppm 0" >> "$tmp/img/list.txt"; done
"$bin" ingest --format list --input "$tmp/img/list.txt" --domain mine --split test --out "$tmp/own" --encoding png \
  --size 64 > /dev/null 2>&1 || fail "ingest"
# Batches of 3 in both: 6 files, no padded tail (a batch's size moves float32
# matrix products by ~1e-7; the same batches give the same bits).
"$bin" eval "${common[@]}" --set data.store="$tmp/own" --set batch_per_rank=3 --checkpoint "$checkpoint" --targets mine --out "$tmp/eval" \
  > "$tmp/eval.log" 2>&1 || fail "eval: $(tail -3 "$tmp/eval.log")"

# 3. No stored threshold: refused, nothing written.
set +e
"$bin" predict --model "$checkpoint" --out "$tmp/p0.csv" "$tmp/img" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "has no stored threshold .*give --threshold T" "$tmp/err" || fail "no threshold: rc $rc, $(cat "$tmp/err")"
[ ! -e "$tmp/p0.csv" ] || fail "a refused predict wrote its output"
# Errors name the input, not our source files; --verbose adds the source line.
! grep -q "\.cc:[0-9]" "$tmp/err" || fail "an error shows a C++ source path: $(cat "$tmp/err")"
out=$("$bin" predict --model "$checkpoint" "$tmp/img" --verbose 2>&1) && fail "predict without a threshold ran"
grep -q "\[.*predict_command.cc:[0-9]*\]$" <<< "$out" || fail "--verbose does not name the source line: $out"

# 4. predict == eval, file by file.
"$bin" predict --model "$checkpoint" --threshold 0.5 --batch 3 --quiet --out "$tmp/p.csv" "$tmp/img" 2> "$tmp/err" ||
  fail "predict: $(cat "$tmp/err")"
python3 - "$tmp/p.csv" "$tmp/eval/scores.csv" <<'PY' || fail "predict differs from eval"
import csv, sys
p = list(csv.DictReader(open(sys.argv[1])))
e = sorted(csv.DictReader(open(sys.argv[2])), key=lambda r: int(r["sample_index"]))
assert [r["path"].split("/img/")[1] for r in p] == ["face0.ppm", "face2.ppm", "face4.ppm", "sub/face1.ppm", "sub/face3.ppm", "sub/face5.ppm"], p
assert len(p) == len(e) == 6
for a, b in zip(p, e):
    assert "%.9g" % float(a["spoof_probability"]) == "%.9g" % float(b["score"]), (a, b)  # eval writes 9 digits
    assert a["decision"] == ("spoof" if float(a["spoof_probability"]) >= 0.5 else "live") and a["frames"] == "1", a
PY

# 5. export: the bundle and the Hugging Face vision tower.
"$bin" export --model "$checkpoint" --threshold 0.69 --out "$tmp/bundle" --hf "$tmp/hf" > "$tmp/export.log" 2>&1 ||
  fail "export: $(cat "$tmp/export.log")"
python3 - "$tmp/bundle" "$tmp/hf" <<'PY' || fail "bundle layout"
import json, struct, sys
bundle, hf = sys.argv[1:3]
def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))
b = json.load(open(bundle + "/bundle.json"))
assert b["format"] == "instructflip-bundle" and b["threshold"] == 0.69 and b["style_question"] == "ensemble", b
assert b["threshold_rule"].startswith("given by the user") and b["step"] == 8 and "git" in b["instructflip"], b
main, lm = header(bundle + "/model.safetensors"), header(bundle + "/language_model.safetensors")
assert main["__metadata__"]["format"] == "pt" and lm["__metadata__"]["format"] == "pt"
assert not any(k.startswith("t5_model.") for k in main if k != "__metadata__")
assert all(k.startswith("t5_model.") for k in lm if k != "__metadata__") and len(lm) > 1
assert "variant: full" in open(bundle + "/model.yaml").read()
c, v = json.load(open(hf + "/config.json")), header(hf + "/model.safetensors")
assert c["architectures"] == ["CLIPVisionModel"] and c["image_size"] == 64 and v["__metadata__"]["format"] == "pt", c
assert all(k.startswith("vision_model.") for k in v if k != "__metadata__")
assert "vision_model.embeddings.patch_embedding.weight" in v and "vision_model.post_layernorm.weight" in v
PY
# The bundle scores as its checkpoint; the stored threshold decides; --explain answers.
"$bin" predict --model "$tmp/bundle" --batch 3 --quiet --explain 2 --out "$tmp/b.json" "$tmp/img" 2> "$tmp/err" ||
  fail "predict with the bundle: $(cat "$tmp/err")"
python3 - "$tmp/b.json" "$tmp/p.csv" <<'PY' || fail "bundle predictions"
import csv, json, sys
b = json.load(open(sys.argv[1])); p = list(csv.DictReader(open(sys.argv[2])))
assert b["threshold"] == 0.69 and b["style_question"] == "ensemble", b
for i, (x, y) in enumerate(zip(b["predictions"], p)):
    assert x["path"] == y["path"] and "%.9g" % x["spoof_probability"] == "%.9g" % float(y["spoof_probability"]), (x, y)
    assert x["decision"] == ("spoof" if x["spoof_probability"] >= 0.69 else "live"), x
    assert ("content_answer" in x) == (i < 2) and (i >= 2 or x["style_question"] in ("illumination", "environment", "camera_quality")), x
PY

# 6. An unreadable file: its row says why, the others are scored, exit 2.
printf '\xff\xd8\xff broken' > "$tmp/img/broken.jpg"
set +e
"$bin" predict --model "$tmp/bundle" --quiet --out "$tmp/broken.csv" "$tmp/img" 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "1 of 7 file(s) could not be read" "$tmp/err" || fail "unreadable file: rc $rc, $(cat "$tmp/err")"
# (the tiny model trains its T5 tokenizer at load, and sentencepiece logs that one line whatever its log level)
[ "$(grep -vc "^sentencepiece_trainer.cc" "$tmp/err")" = 1 ] ||
  fail "an unreadable file gave more than one line: $(cat "$tmp/err")"
python3 - "$tmp/broken.csv" <<'PY' || fail "unreadable file's row"
import csv, sys
rows = {r["path"].rsplit("/", 1)[1]: r for r in csv.DictReader(open(sys.argv[1]))}
assert rows["broken.jpg"]["error"] and rows["broken.jpg"]["spoof_probability"] == "", rows["broken.jpg"]
assert sum(1 for r in rows.values() if r["decision"]) == 6, rows
PY

# 7. export never overwrites.
before=$(cat "$tmp/bundle/bundle.json")
set +e
"$bin" export --model "$checkpoint" --threshold 0.5 --out "$tmp/bundle" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "not an empty directory" "$tmp/err" || fail "export over a bundle: rc $rc, $(cat "$tmp/err")"
[ "$(cat "$tmp/bundle/bundle.json")" = "$before" ] || fail "a refused export changed the bundle"
# Both outputs are checked before either is written.
mkdir -p "$tmp/full" && touch "$tmp/full/x"
set +e
"$bin" export --model "$checkpoint" --threshold 0.5 --out "$tmp/new-bundle" --hf "$tmp/full" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--hf $tmp/full exists and is not an empty directory" "$tmp/err" && [ ! -e "$tmp/new-bundle" ] ||
  fail "export with a non-empty --hf: rc $rc, $(cat "$tmp/err"), $(ls "$tmp")"
# Outputs that cannot be written are refused before any scoring, leaving nothing behind.
mkdir "$tmp/taken.csv"
for args in "--out $tmp/taken.csv|is a directory, not a file" "--out $tmp/nowhere/p.csv|directory '$tmp/nowhere' does not exist" \
            "--threshold 2|leave it out for the model's stored threshold, where it has one"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" predict --model "$tmp/bundle" --quiet ${args%%|*} "$tmp/img" > /dev/null 2> "$tmp/err"; rc=$?
  set -e
  [ "$rc" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -qF -- "${args#*|}" "$tmp/err" ||
    fail "predict ${args%%|*}: rc $rc, $(cat "$tmp/err")"
done
[ -z "$(ls -A "$tmp/taken.csv")" ] && [ ! -e "$tmp/nowhere" ] || fail "a refused predict left files: $(ls -A "$tmp")"
set +e
"$bin" export --model "$checkpoint" --threshold 0.5 --out "$tmp/same" --hf "$tmp/same/" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--out and --hf name the same directory" "$tmp/err" && [ ! -e "$tmp/same" ] ||
  fail "export with --out = --hf: rc $rc, $(cat "$tmp/err")"
echo "predict_test: OK"
