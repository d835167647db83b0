# Sourced by the shell tests that signal one rank of an mpirun job; the test
# defines `fail MESSAGE`.
# rank_pid PATTERN RANK: the pid of the process matching PATTERN (pgrep -f)
# whose Open MPI world rank is RANK; empty if none.
rank_pid() {
  local p
  for p in $(pgrep -f "$1"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -q "^OMPI_COMM_WORLD_RANK=$2\$"; then
      echo "$p"
      return
    fi
  done
}

# kill_rank_and_expect_end PATTERN JOB START WHAT: SIGKILLs rank 1 of the job
# whose processes match PATTERN, waits for its launcher (pid JOB) and fails
# unless it ended non-zero within 60 s of START (date +%s), as a dead rank must
# not leave the others waiting; the seconds it took are left in $elapsed.
kill_rank_and_expect_end() {
  local victim rc
  victim=$(rank_pid "$1" 1)
  [ -n "$victim" ] || fail "could not find rank 1"
  kill -9 "$victim"
  set +e; wait "$2"; rc=$?; set -e
  elapsed=$(( $(date +%s) - $3 ))
  [ "$rc" != 0 ] || fail "$4 exited 0"
  [ "$elapsed" -lt 60 ] || fail "$4 took ${elapsed} s to end"
}
