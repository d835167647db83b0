#include "launch/job_runtime.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include <absl/strings/str_join.h>
#include <glog/logging.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dist/device.h"
#include "dist/mpi_communicator.h"
#include "dist/nccl_communicator.h"
#include "launch/commands.h"
#include "trainer/checkpoint.h"
#include "trainer/run_files.h"

namespace instructflip::launch {
namespace {

std::atomic<bool> g_stop_requested{false};
std::atomic<bool> g_in_step_loop{false};
void RequestStop(int) {
  if (g_in_step_loop.load()) {
    g_stop_requested.store(true);
    return;
  }
  // Async-signal-safe: write(2) and _exit(2) only.
  static const char kMessage[] = "instructflip: stop signal during start-up: exiting now (no step done, nothing to "
                                 "checkpoint yet)\n";
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  ::_exit(kExitRequeue);
}

}  // namespace

namespace {

std::unique_ptr<Communicator> MakeCommunicator(const WorldInfo& world, const torch::Device& device,
                                               std::chrono::seconds timeout) {
  if (device.is_cuda()) return MakeNcclCommunicator(MPI_COMM_WORLD, device, timeout);
  if (world.size == 1) return MakeSingleProcessCommunicator();
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, timeout);
}

// What must be the same on every rank: the resolved configuration and the
// store's manifest (by CRC32C: a stale copy on one node is another dataset).
std::string RankIdentity(const TrainConfig& config) {
  const std::string manifest = JoinPath(config.trainer.store, "manifest.json");
  return config.resolved_yaml + "\nstore_manifest_crc32c: " +
         (PathExists(manifest) ? std::to_string(FileCrc32c(manifest)) : std::string("none")) + "\n";
}

}  // namespace

std::unique_ptr<Communicator> StartRank(const WorldInfo& world, TrainConfig* config) {
  const torch::Device device = SelectDevice(config->device, world, "configuration 'device'");
  config->trainer.device = device;
  compat::SetCurrentDevice(device);
  std::unique_ptr<Communicator> communicator =
      MakeCommunicator(world, device, std::chrono::seconds(config->communication_timeout_s));
  if (world.size > 1) {
    char host[256] = "?";
    gethostname(host, sizeof(host) - 1);
    LOG(INFO) << "rank " << world.rank << " of " << world.size << " on " << host << ", local rank "
              << world.local_rank << " of " << world.local_size << ", " << device << ", " << communicator->name();
  }
  if (world.size > 1) CheckSameConfigurationOnEveryRank(RankIdentity(*config), communicator.get());
  return communicator;
}

void CheckSameConfigurationOnEveryRank(const std::string& identity, Communicator* communicator) {
  // Rank 0's text to everyone: its length, then its bytes.
  torch::Tensor length = torch::tensor({static_cast<int64_t>(identity.size())}, torch::kInt64);
  communicator->Broadcast(length, 0);
  torch::Tensor bytes = torch::zeros({length.item<int64_t>()}, torch::kUInt8);
  if (communicator->rank() == 0) std::memcpy(bytes.data_ptr(), identity.data(), identity.size());
  communicator->Broadcast(bytes, 0);
  const std::string rank0(reinterpret_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()));
  const std::vector<std::string> changes = rank0 == identity ? std::vector<std::string>{} : ChangedKeys(rank0, identity);
  torch::Tensor differing = torch::tensor({changes.empty() ? 0.0 : 1.0}, torch::kFloat64);
  communicator->AllReduce(differing, ReduceOp::kSum);
  const int others = static_cast<int>(differing.item<double>());
  // Every rank stops, together: the differing ones name their keys.
  IF_REQUIRE(changes.empty(), "rank ", communicator->rank(), " runs another configuration or store than rank 0: ",
             absl::StrJoin(changes, "; "), " (every rank must be started with the same flags and data)");
  IF_REQUIRE(others == 0, others, " rank(s) run another configuration or store than rank 0 (their errors name "
             "the keys); every rank must be started with the same flags and data");
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

void InstallStopSignals() {
  std::signal(SIGUSR1, RequestStop);
  std::signal(SIGTERM, RequestStop);
  std::signal(SIGINT, RequestStop);  // Ctrl-C: checkpoint and stop, as scancel does
}

void ConnectStopSignals(TrainerOptions* options) {
  options->stop_requested = &g_stop_requested;
  options->in_step_loop = [](bool in_loop) { g_in_step_loop.store(in_loop); };
}

bool StopWasRequested() { return g_stop_requested.load(); }

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

}  // namespace instructflip::launch
