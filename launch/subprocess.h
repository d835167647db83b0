// Child processes of the `instructflip` driver: a job run with its output in
// a log (and stop signals passed on to it), a command's captured output,
// shell quoting, and finding programs.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace instructflip::launch {

// From now on SIGUSR1/SIGTERM/SIGINT to this process are passed on to the child that
// RunLogged is waiting for as SIGUSR1 (mpirun forwards SIGUSR1 to its ranks),
// so a job checkpoints and exits 3 (kExitRequeue).
void ForwardStopSignalsToChildren();
// Runs argv with stdout and stderr appended to `log`; returns the exit code
// (128 + signal when killed, 127 when it cannot start). `while_running`, if
// given, is called about ten times a second until the child ends.
int RunLogged(const std::vector<std::string>& argv, const std::string& log,
              const std::function<void()>& while_running = {});
// `command` through the shell; its stdout without trailing blanks. Throws
// instructflip::Error with the output when it fails.
std::string Capture(const std::string& command);
// `s` single-quoted for the shell.
std::string Quote(const std::string& s);
// The program's path on PATH, or "" if there is none.
std::string FindOnPath(const std::string& program);
// This executable's path.
std::string SelfPath();
// What a failed child wrote to its log from byte `from` on (the log may hold
// earlier attempts, or another process's lines): its error lines
// ("...: error: ...") if it printed any, else the last `n` lines; each
// indented by two spaces.
std::string FailureLines(const std::string& path, int64_t from, int n);

}  // namespace instructflip::launch
