#include "launch/subprocess.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip::launch {

namespace {

// The child RunLogged waits for (0: none).
volatile sig_atomic_t g_child = 0;
void ForwardStop(int) {
  if (g_child > 0) kill(static_cast<pid_t>(g_child), SIGUSR1);
}

}  // namespace

void ForwardStopSignalsToChildren() {
  std::signal(SIGUSR1, ForwardStop);
  std::signal(SIGTERM, ForwardStop);
  std::signal(SIGINT, ForwardStop);
}

int RunLogged(const std::vector<std::string>& argv, const std::string& log, const std::function<void()>& while_running) {
  const pid_t pid = fork();
  IF_SYSCALL(pid, "fork");
  if (pid == 0) {
    FILE* out = std::fopen(log.c_str(), "a");
    if (out == nullptr) _exit(127);
    dup2(fileno(out), STDOUT_FILENO);
    dup2(fileno(out), STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::perror(args[0]);
    _exit(127);
  }
  g_child = pid;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, while_running ? WNOHANG : 0);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    if (done == 0) {
      while_running();
      usleep(100 * 1000);  // a finished child is noticed within 0.1 s
    }
  }
  g_child = 0;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && access(JoinPath(dir, program).c_str(), X_OK) == 0) return JoinPath(dir, program);
  return "";
}

std::string SelfPath() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::string FailureLines(const std::string& path, int64_t from, int n) {
  std::ifstream in(path);
  in.seekg(from);
  std::vector<std::string> lines, errors;
  for (std::string line; std::getline(in, line);) {
    if (line.find(": error: ") != std::string::npos) errors.push_back(line);
    lines.push_back(line);
  }
  if (!errors.empty()) lines = errors;
  std::string out;
  for (size_t i = lines.size() > size_t(n) ? lines.size() - n : 0; i < lines.size(); ++i) out += "  " + lines[i] + "\n";
  return out;
}


std::string Capture(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  IF_REQUIRE(pipe != nullptr, "could not run: ", command);
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = pclose(pipe);
  IF_REQUIRE(status == 0, "command failed (status ", status, "): ", command, "\n", out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace instructflip::launch
