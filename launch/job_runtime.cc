#include "launch/job_runtime.h"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "dataio/check.h"
#include "dist/mpi_communicator.h"

namespace instructflip::launch {
namespace {

std::atomic<bool> g_stop_requested{false};
void RequestStop(int) { g_stop_requested.store(true); }

}  // namespace

std::unique_ptr<Communicator> MakeCommunicator(const WorldInfo& world, int timeout_s) {
  if (world.size == 1) return MakeSingleProcessCommunicator();
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, std::chrono::seconds(timeout_s));
}

int AbortJobOnError(const char* command, const WorldInfo& world, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (world.size == 1) throw;
    std::cerr << "instructflip " << command << ": rank " << world.rank << " of " << world.size << ": error: "
              << e.what() << "\n";
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}

const std::atomic<bool>* InstallStopSignals() {
  std::signal(SIGUSR1, RequestStop);
  std::signal(SIGTERM, RequestStop);
  return &g_stop_requested;
}

std::function<void(int64_t, const std::string&)> CrashPointFromEnvironment() {
  const char* spec = std::getenv("INSTRUCTFLIP_CRASH_AT");
  if (spec == nullptr || *spec == '\0') return {};
  const std::string text = spec;
  const size_t colon = text.find(':');
  IF_REQUIRE(colon != std::string::npos, "INSTRUCTFLIP_CRASH_AT must be STEP:POINT, got '", text, "'");
  const int64_t step = std::stoll(text.substr(0, colon));
  const std::string point = text.substr(colon + 1);
  return [step, point](int64_t at, const std::string& here) {
    if (at == step && here == point) std::raise(SIGKILL);
  };
}

std::vector<std::string> SplitNames(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ','))
    if (!name.empty()) out.push_back(name);
  return out;
}

}  // namespace instructflip::launch
