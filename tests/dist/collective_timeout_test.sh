#!/usr/bin/env bash
# Each blocking collective that a peer joins late ends the job within the
# timeout, naming the operation (collective_timeout_test.cc).
# Usage: collective_timeout_test.sh PATH/TO/collective_timeout_test
set -uo pipefail
bin=$1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for op in barrier broadcast all-gather all-reduce; do
  start=$(date +%s%N)
  mpirun -np 2 --oversubscribe --allow-run-as-root "$bin" "$op" > "$log" 2>&1; rc=$?
  elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  ! grep -q "^returned" "$log" || fail "$op: the late peer was waited for (${elapsed_ms} ms)"
  [ "$rc" != 0 ] || fail "$op: exit 0"
  grep -q "collective timed out on rank 0 of 2 at step 17: $op" "$log" || fail "$op: no timeout message: $(cat "$log")"
  [ "$elapsed_ms" -lt 3500 ] || fail "$op: took ${elapsed_ms} ms"
  echo "$op: aborted after ${elapsed_ms} ms"
done
