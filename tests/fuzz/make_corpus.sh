#!/usr/bin/env bash
# Regenerates the seed corpora under corpus/ (except safetensors/, made by
# make_safetensors_corpus.py) from: the shipped configs, a synthetic store's
# manifest, small hand-written label and score files, the seeds the targets
# make themselves (encoded JPEGs, a trained sentencepiece model, instruction
# texts), and, for the store target, whose input is an encoding of choices
# only a fuzzer writes well, a 60 s run merged down. Crash inputs kept as
# regression seeds (regress-*) are left in place.
#   tests/fuzz/make_corpus.sh [BUILD_DIR=build] [FUZZ_BUILD_DIR=build-fuzz]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
fuzz="${2:-build-fuzz}"
corpus=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fresh() {  # corpus/<target> without its generated seeds, regressions kept
  mkdir -p "$corpus/$1"
  find "$corpus/$1" -type f ! -name 'regress-*' -delete
}
# A seed: a selector byte (decimal), then a file's bytes.
seed() { { printf "\\$(printf '%03o' "$2")"; cat "$3"; } > "$corpus/$1"; }

fresh yaml_config
for f in configs/train/*.yaml; do seed "yaml_config/train-$(basename "$f")" 0 "$f"; done
for f in configs/model/*.yaml; do seed "yaml_config/model-$(basename "$f")" 1 "$f"; done
for f in configs/protocols/*.yaml; do seed "yaml_config/protocol-$(basename "$f")" 2 "$f"; done

fresh manifest
"$build/launch/instructflip" synth --out "$tmp/store" --domains 2 --per-domain 8 --size 32 > /dev/null 2>&1
cp "$tmp/store/manifest.json" "$corpus/manifest/synth.json"

fresh scores_csv
printf 'score,label,video_id,domain,sample_index\n0.1,0,a,x,0\n0.9,1,b,x,1\n0.4,0,a,x,2\n0.6,1,c,y,3\n0.2,0,d,y,4\n' \
  > "$corpus/scores_csv/eval.csv"
printf 'video_id,label,score\r\nv1,1,1e-3\r\nv2,0,0.5\r\n' > "$corpus/scores_csv/crlf.csv"

fresh ingest
printf 'live/a_frame0.jpg 0\nlive/a_frame1.jpg 0\n# comment\nspoof/b.jpg 1 3\nvideo/c.mp4 1\n' > "$tmp/list"
seed ingest/list.txt 0 "$tmp/list"
printf 'path,label,spoof_type,illumination,environment,camera_quality,video_id,subject_id,domain,split\n"a,1.jpg",0,0,1,0,2,7,3,dom,train\nb.jpg,1,,,,,,,dom,test\nc.mp4,1,4,-1,-1,-1,,,other,\n' \
  > "$tmp/csv"
seed ingest/labels.csv 1 "$tmp/csv"
zeros='0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0'
printf '{"Data/train/1/live/1.jpg": [%s,0,1,2,0], "Data/train/2/spoof/2.jpg": [%s,4,2,1,1]}' "$zeros" "$zeros" \
  > "$tmp/json"
seed ingest/train_label.json 2 "$tmp/json"

for target in jpeg t5_tokenizer wordpiece; do
  fresh "$target"
  INSTRUCTFLIP_FUZZ_WRITE_SEEDS="$corpus/$target" "$fuzz/tests/fuzz/${target}_fuzz" > /dev/null 2>&1
done

fresh store
mkdir "$tmp/found"
"$fuzz/tests/fuzz/store_fuzz" "$tmp/found" -max_total_time=60 > /dev/null 2>&1 || true
"$fuzz/tests/fuzz/store_fuzz" -merge=1 "$corpus/store" "$tmp/found" > /dev/null 2>&1
for target in "$corpus"/*/; do
  printf '%-14s %4s seeds, %s\n' "$(basename "$target")" "$(find "$target" -type f | wc -l)" "$(du -sh "$target" | cut -f1)"
done
