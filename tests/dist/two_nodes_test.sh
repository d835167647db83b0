#!/usr/bin/env bash
# Two "nodes" on this machine: Open MPI reaches hosts 127.0.0.2 and 127.0.0.3
# through a launcher agent that starts each one's daemon in its own UTS
# namespace (own hostname) instead of ssh; all traffic stays on loopback
# (../shared/NOTES.md). Checked: local ranks per node, a short training equal
# to the same training on one node, and a killed "node" ending the job with an
# error within the collective timeout.
# Usage: two_nodes_test.sh PATH/TO/instructflip   (exit 77: skipped)
set -euo pipefail
bin=$(realpath "$1")
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=tests/common/mpi_ranks.sh
. tests/common/mpi_ranks.sh
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
unshare --uts true 2> /dev/null || { echo "SKIP: UTS namespaces are not allowed here (needs root)"; exit 77; }

cat > "$tmp/agent.sh" <<'A'
#!/bin/bash
while [[ "$1" == -* ]]; do shift; done  # ssh-style options Open MPI may pass
host=$1; shift
exec unshare --uts /bin/sh -c 'hostname "$0"; exec /bin/sh -c "$1"' "$host" "$*"
A
chmod +x "$tmp/agent.sh"
two_nodes() {  # two_nodes RANKS_PER_NODE ARGS...
  local per=$1; shift
  mpirun --allow-run-as-root -np $((2 * per)) --host "127.0.0.2:$per,127.0.0.3:$per" \
    --mca plm_rsh_agent "$tmp/agent.sh" --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo \
    --mca btl self,tcp,vader "$@"
}

"$bin" synth --out "$tmp/store" --domains 2 --per-domain 24 --size 64 --seed 1 > /dev/null
common=(train --config configs/train/synthetic_tiny.yaml --set data.store="$tmp/store"
        --set "data.train_domains=[synA, synB]" --set total_steps=4 --set batch_per_rank=4 --set log_every=1
        --set data.loader_threads=1 --set schedule.pct_start=0.5 --set model.t5_warmup.steps=20)

# 1. Two ranks per node: each node numbers its own local ranks.
two_nodes 2 "$bin" "${common[@]}" --set batch_per_rank=2 --run-dir "$tmp/four" > "$tmp/four.log" 2>&1 ||
  fail "4 ranks on 2 nodes: $(tail -5 "$tmp/four.log")"
for node in 127.0.0.2 127.0.0.3; do
  for local in 0 1; do
    grep -q "on $node, local rank $local of 2" "$tmp/four.log" || fail "no rank on $node with local rank $local"
  done
done

# 2. One rank per node trains the same model as two ranks on one node.
two_nodes 1 "$bin" "${common[@]}" --run-dir "$tmp/two" > "$tmp/two.log" 2>&1 ||
  fail "2 nodes: $(tail -5 "$tmp/two.log")"
mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" "${common[@]}" --run-dir "$tmp/one" > "$tmp/one.log" 2>&1 ||
  fail "1 node: $(tail -5 "$tmp/one.log")"
cmp "$tmp/one/checkpoints/step-00000004/model.safetensors" "$tmp/two/checkpoints/step-00000004/model.safetensors" ||
  fail "the two-node model differs from the one-node model"

# 3. A "node" killed mid-run ends the job with an error within the timeout.
start=$(date +%s)
two_nodes 1 "$bin" "${common[@]}" --set total_steps=400 --set dist.timeout_s=15 --run-dir "$tmp/killed" \
  > "$tmp/killed.log" 2>&1 &
job=$!
for _ in $(seq 1 300); do
  [ -f "$tmp/killed/metrics.jsonl" ] && [ "$(grep -c '"step"' "$tmp/killed/metrics.jsonl")" -ge 2 ] && break
  sleep 0.2
done
kill_rank_and_expect_end "instructflip train.*$tmp/killed" "$job" "$start" "the job with a killed node"
echo "two_nodes_test: all checks passed (killed node ended the job in ${elapsed} s)"
