#include "launch/job_runtime.h"

#include <algorithm>
#include <filesystem>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "dataio/base/check.h"
#include "dist/device.h"
#include "dist/mpi_communicator.h"
#include "dist/nccl_communicator.h"
#include "trainer/checkpoint.h"
#include "trainer/run_files.h"

namespace instructflip::launch {
namespace {

std::atomic<bool> g_stop_requested{false};
void RequestStop(int) { g_stop_requested.store(true); }

}  // namespace

std::unique_ptr<Communicator> StartRank(const WorldInfo& world, TrainConfig* config) {
  const torch::Device device = SelectDevice(config->device, world, "configuration 'device'");
  config->trainer.device = device;
  compat::SetCurrentDevice(device);
  const std::chrono::seconds timeout(config->communication_timeout_s);
  if (device.is_cuda()) return MakeNcclCommunicator(MPI_COMM_WORLD, device, timeout);
  if (world.size == 1) return MakeSingleProcessCommunicator();
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, timeout);
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
  int64_t step = -1;
  try {
    size_t used = 0;
    step = std::stoll(text.substr(0, colon), &used);
    if (used != colon) step = -1;
  } catch (const std::logic_error&) {  // no number, or out of range
  }
  IF_REQUIRE(colon != std::string::npos && step >= 0, "INSTRUCTFLIP_CRASH_AT must be STEP:POINT, got '", text, "'");
  const std::string point = text.substr(colon + 1);
  const auto& points = CheckpointStore::kFaultPoints;
  IF_REQUIRE(std::find(std::begin(points), std::end(points), point) != std::end(points),
             "INSTRUCTFLIP_CRASH_AT: unknown point '", point, "' (after_first_file, before_complete or before_latest)");
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

std::unique_ptr<FileLock> ClaimRunDirectory(const std::string& dir, const std::string& what) {
  IF_REQUIRE(!PathExists(dir) || std::filesystem::is_directory(dir), what, " '", dir,
             "' is a file, not a directory");
  std::filesystem::create_directories(dir);
  return std::make_unique<FileLock>(TrainRunFiles{dir}.Lock(), "run directory '" + dir + "'");
}

}  // namespace instructflip::launch
