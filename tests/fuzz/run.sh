#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR (default build-fuzz) for SECONDS
# (default 30) each, from its committed seed corpus (corpus/<target>/, which
# also holds the inputs of every crash found so far, so each is re-checked).
# New inputs go to a scratch directory, never into the committed corpus. Runs
# as many targets at once as there are cores. Exit 1 if any target fails; its
# log and the crashing input are printed and kept (under $FUZZ_ARTIFACTS if set,
# else a temp directory, removed when every target passes).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build-fuzz}"
seconds="${2:-30}"
keep_artifacts=${FUZZ_ARTIFACTS:+1}
artifacts="${FUZZ_ARTIFACTS:-$(mktemp -d /tmp/instructflip-fuzz-artifacts.XXXXXX)}"
mkdir -p "$artifacts"
targets=()
for corpus in "$here"/corpus/*/; do targets+=("$(basename "$corpus")"); done

run_one() {
  local target=$1 build=$2 seconds=$3 artifacts=$4 here=$5
  local exe="$build/tests/fuzz/${target}_fuzz" work
  work=$(mktemp -d)
  # -timeout: an input taking 10 s is a hang. -rss_limit_mb: the T5 target
  # settles near 1.8 GB under ASan (sentencepiece models of 240 kB); 3 GB is a bomb.
  # A leak in a parser is a finding too (LeakSanitizer runs after each input).
  "$exe" "$work" "$here/corpus/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 \
    -artifact_prefix="$artifacts/$target-" -print_final_stats=1 > "$artifacts/$target.log" 2>&1
  local rc=$?
  rm -rf "$work"
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$artifacts/$target.log" | grep -o '[0-9]*$')
  if [ $rc = 0 ]; then
    printf '%-14s ok      %9s inputs in %ss\n' "$target" "${runs:-?}" "$seconds"
  else
    printf '%-14s FAILED  (rc %s)\n' "$target" "$rc"
    return 1
  fi
}
export -f run_one

printf '%s\n' "${targets[@]}" |
  xargs -P "$(nproc)" -I{} bash -c 'run_one "$@"' _ {} "$build" "$seconds" "$artifacts" "$here"
status=$?
if [ $status != 0 ]; then
  for log in "$artifacts"/*.log; do
    grep -q -E 'ERROR|deadly|invariant broken|Test unit written' "$log" || continue
    echo "---- $log"
    grep -v '^INFO\|^#[0-9]' "$log" | tail -40
  done
  for crash in "$artifacts"/*-crash-* "$artifacts"/*-timeout-* "$artifacts"/*-oom-* "$artifacts"/*-leak-*; do
    [ -e "$crash" ] || continue
    echo "---- input $crash (base64):"
    base64 -w 76 "$crash" | head -40
  done
  echo "fuzz: FAILED; artifacts in $artifacts" >&2
  exit 1
fi
if [ -n "$keep_artifacts" ]; then
  echo "fuzz: all ${#targets[@]} targets ok (${seconds}s each); logs in $artifacts"
else
  rm -rf "$artifacts"
  echo "fuzz: all ${#targets[@]} targets ok (${seconds}s each)"
fi
