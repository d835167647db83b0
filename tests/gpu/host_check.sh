#!/usr/bin/env bash
# The checks that need a CUDA GPU, for the GPU host that is lent now and then
# (see ../shared/gpu-host/README.md): device time is scarce, so everything is
# one script, run from the repository root with the `.gpu/` folder carried:
#
#   OUT=$OUT bash tests/gpu/host_check.sh [PHASE ...]     (default: all)
#
# Phases, each under its own time limit, logging into $OUT/PHASE.log and one
# line into $OUT/summary.txt; a failing phase does not stop the next one:
#   build     Debian libraries from .gpu/, CMake against the host's PyTorch
#             (CUDA LibTorch) and NCCL wheel, build into build-gpu/
#   fixtures  Hugging Face parity fixtures (tests/gpu/make_hf_fixtures.py) into
#             $OUT/hf and our loader + modules checked against them
#   gputest   tests/gpu (NCCL collectives, reducer, GPU vs CPU, resume, bf16/fp16)
#   ctest     the whole test suite (Slurm and the browser test need packages the
#             host lacks: excluded)
#   train     a bf16 training run of the base model (random weights, built-in
#             tokenizers: the host has no model hub) on 1 rank with NCCL
#   bench     bench step of the base model, bf16, batch 64 (images/s, MFU)
# The build directory stays on the host while it is warm, so later calls can
# run single phases.
# shellcheck disable=SC2317  # the phase_* functions are called by name
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
OUT=${OUT:-$PWD/gpu-out}
PREFIX=${PREFIX:-/tmp/gp}
BUILD=${BUILD:-build-gpu}
mkdir -p "$OUT"
phases=("$@")
[ ${#phases[@]} -eq 0 ] && phases=(build fixtures gputest ctest train bench)

environment() {
  [ -f "$PREFIX/env.sh" ] || bash .gpu/install.sh "$PREFIX" .gpu/debs >"$OUT/install.log" 2>&1 || return 1
  # shellcheck disable=SC1091
  . "$PREFIX/env.sh"
  TORCH=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  NCCL=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])')
  [ -n "$TORCH" ] && [ -n "$NCCL" ] || return 1
  LD_LIBRARY_PATH="$NCCL/lib:$(dirname "$TORCH")/../lib:${LD_LIBRARY_PATH:-}"
  export LD_LIBRARY_PATH
}

phase_build() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch.compiled_with_cxx11_abi())'
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINSTRUCTFLIP_WITH_OPENCV=OFF \
    -DCMAKE_PREFIX_PATH="$TORCH;$NCCL" &&
    cmake --build "$BUILD" -j "$(nproc)"
}

phase_fixtures() {
  python3 tests/gpu/make_hf_fixtures.py "$OUT/hf" &&
    INSTRUCTFLIP_HF_FIXTURES="$OUT/hf" "$BUILD/tests/hf_parity_test"
}

phase_gputest() { (cd "$BUILD" && ctest --output-on-failure --no-tests=error -R '^gpu\.'); }

phase_ctest() { (cd "$BUILD" && ctest --output-on-failure -j 8 -E '^(slurm\.|cli\.report_render)'); }

phase_train() {
  local store=/tmp/gpu-store run="$OUT/train-run"
  rm -rf "$store" "$run"
  "$BUILD/launch/instructflip" synth --out "$store" --domains 2 --per-domain 400 --size 224 --threads 8 &&
    mpirun -np 1 "$BUILD/launch/instructflip" train --config configs/train/instruct_flip.yaml --run-dir "$run" \
      --set data.store="$store" --set 'data.train_domains=[synA,synB]' --set data.epoch_size=0 \
      --set model.tokenizers.bert_vocab=instructions --set model.tokenizers.t5_spiece=instructions \
      --set 'model.pretrained.clip=""' --set 'model.pretrained.bert=""' --set 'model.pretrained.t5=""' \
      --set accumulation=1 --set total_steps=60 --set log_every=10 --set checkpoint.every=1000 \
      --set device=cuda --set data.loader_threads=8 &&
    tail -n 3 "$run/metrics.jsonl"
}

phase_bench() {
  "$BUILD/launch/instructflip" bench step --model base --batch 64 --precision bf16 --steps 10 --json &&
    "$BUILD/launch/instructflip" bench step --model base --batch 64 --precision fp32 --steps 5 --json
}

limit_of() {
  case $1 in build) echo 420 ;; ctest) echo 480 ;; *) echo 240 ;; esac
}

# One phase in this process, under the caller's time limit.
if [ "${1:-}" = --one ]; then
  environment || { echo "environment: .gpu/install.sh or the host's torch/NCCL failed (see install.log)"; exit 1; }
  "phase_$2"
  exit $?
fi

status=0
for phase in "${phases[@]}"; do
  declare -F "phase_$phase" >/dev/null || { echo "unknown phase '$phase'" | tee -a "$OUT/summary.txt"; exit 2; }
  start=$(date +%s)
  timeout "$(limit_of "$phase")" bash "$0" --one "$phase" >>"$OUT/$phase.log" 2>&1
  rc=$?
  echo "$phase: rc=$rc, $(($(date +%s) - start)) s" | tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
done
exit $status
