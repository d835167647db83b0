# Sourced by the shell tests that signal one rank of an mpirun job.
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
