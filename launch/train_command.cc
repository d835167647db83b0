// instructflip train: one rank of a training job (mpirun, srun or alone).
// SIGUSR1/SIGTERM (Slurm's pre-emption warning, scancel) make every rank stop
// at the same step, checkpoint and exit with kExitRequeue so a requeued job
// resumes with --resume auto. A failure on one rank aborts the whole job
// (MPI_Abort) instead of leaving the others waiting.
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>

#include "dataio/check.h"
#include "dataio/file_util.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_runtime.h"
#include "launch/commands.h"
#include "launch/flags.h"
#include "launch/train_config_yaml.h"
#include "model/weights.h"
#include "trainer/evaluator.h"
#include "trainer/trainer.h"

namespace instructflip::launch {
namespace {

std::atomic<bool> g_stop_requested{false};
void RequestStop(int) { g_stop_requested.store(true); }

// The job's communicator: MPI across ranks, the trivial one for a single process.
std::unique_ptr<Communicator> MakeCommunicator(const WorldInfo& world, int timeout_s) {
  if (world.size == 1) return MakeSingleProcessCommunicator();
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, std::chrono::seconds(timeout_s));
}

// Runs `body`; on one rank of many an error aborts the whole job, so the
// other ranks do not wait for this one in a collective.
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

int RunTrain(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "train takes no positional arguments");
  IF_REQUIRE(!FLAGS_config.empty(), "train: --config FILE is required");
  IF_REQUIRE(!FLAGS_run_dir.empty(), "train: --run-dir DIR is required");
  TrainConfig config = LoadTrainConfig(FLAGS_config, SetOverrides());
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  std::unique_ptr<Communicator> communicator = MakeCommunicator(world, config.communication_timeout_s);
  std::signal(SIGUSR1, RequestStop);
  std::signal(SIGTERM, RequestStop);
  config.trainer.stop_requested = &g_stop_requested;
  return AbortJobOnError("train", world, [&] {
    if (world.rank == 0) {
      std::filesystem::create_directories(FLAGS_run_dir);
      WriteFileAtomic(JoinPath(FLAGS_run_dir, "config.yaml"), config.resolved_yaml);
    }
    communicator->Barrier();
    Trainer trainer(config.trainer, communicator.get(), FLAGS_run_dir);
    const TrainResult result = trainer.Run(FLAGS_resume);
    if (world.rank == 0)
      std::cout << "train: " << (result.interrupted ? "stopped" : "finished") << " at step " << result.steps
                << ", loss " << result.last_loss << ", run directory " << FLAGS_run_dir << "\n";
    return result.interrupted ? kExitRequeue : 0;
  });
}

std::vector<std::string> SplitNames(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ','))
    if (!name.empty()) out.push_back(name);
  return out;
}

// instructflip eval: scores target domains with a checkpoint's model.
int RunEval(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "eval takes no positional arguments");
  IF_REQUIRE(!FLAGS_config.empty() && !FLAGS_checkpoint.empty() && !FLAGS_out.empty() && !FLAGS_targets.empty(),
             "usage: instructflip eval --config FILE --checkpoint DIR|FILE --targets A,B --out DIR");
  TrainConfig config = LoadTrainConfig(FLAGS_config, SetOverrides());
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  std::unique_ptr<Communicator> communicator = MakeCommunicator(world, config.communication_timeout_s);
  return AbortJobOnError("eval", world, [&] {
    BuiltModel built = BuildModel(config.trainer.model);
    std::string weights = FLAGS_checkpoint;
    if (std::filesystem::is_directory(weights)) weights = JoinPath(weights, "model.safetensors");
    LoadModelWeights(*built.model, weights);
    EvalOptions options;
    options.store = config.trainer.store;
    options.domains = SplitNames(FLAGS_targets);
    options.batch_per_rank = config.trainer.batch_per_rank;
    options.loader_threads = config.trainer.loader_threads;
    options.seed = config.trainer.seed;
    if (FLAGS_threshold >= 0) options.threshold = FLAGS_threshold;
    const EvalResult result = Evaluate(built, options, communicator.get(), FLAGS_out);
    if (world.rank == 0) std::cout << ReadFile(JoinPath(FLAGS_out, "metrics.md"));
    return 0;
  });
}

}  // namespace

std::vector<Command> TrainCommands() {
  return {{"train",
           "train --config FILE --run-dir DIR [--resume auto|CHECKPOINT_DIR] [--set key.path=value ...]\n"
           "      (under mpirun -np N or srun for N ranks)",
           "train InstructFLIP; checkpoints into DIR, resumable; exit 3 after a SIGUSR1/SIGTERM checkpoint",
           {"config", "run_dir", "resume"},
           RunTrain},
          {"eval",
           "eval --config FILE --checkpoint DIR|model.safetensors --targets A,B --out DIR [--threshold T] [--set ...]\n"
           "      (under mpirun -np N for N ranks)",
           "score target domains (test split) with a trained model: scores.csv, metrics.json/.md, ROC per domain",
           {"config", "checkpoint", "targets", "out", "threshold"},
           RunEval}};
}

}  // namespace instructflip::launch
