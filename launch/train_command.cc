// instructflip train / eval: one rank of a training or evaluation job
// (mpirun, srun or alone); see job_runtime.h for signals and errors.
#include <filesystem>
#include <iostream>

#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "launch/commands.h"
#include "launch/flags.h"
#include "launch/job_runtime.h"
#include "launch/train_config_yaml.h"
#include "launch/version.h"
#include "model/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluator.h"
#include "trainer/trainer.h"
#include "trainer/run_files.h"

namespace instructflip::launch {
namespace {

int RunTrain(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "train takes no positional arguments");
  TrainConfig config = LoadTrainConfig(FLAGS_config, SetOverrides());
  InstallStopSignals();
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  std::unique_ptr<Communicator> communicator = StartRank(world, &config);
  ConnectStopSignals(&config.trainer);
  config.trainer.checkpoint_fault_point = CrashPointFromEnvironment();
  return AbortJobOnError("train", world, [&] {
    std::unique_ptr<RunDirectoryClaim> claim;  // held until the run ends
    if (world.rank == 0) {
      claim = ClaimRunDirectory(FLAGS_run_dir, "--run-dir");
      CheckRunConfig(FLAGS_run_dir, config.resolved_yaml, FLAGS_allow_config_change);
    }
    // The configuration is written once the run proved it can go on (store,
    // domains, model, resume): a refused launch leaves the directory as it was.
    config.trainer.started = [&] {
      if (world.rank != 0) return;
      WriteRunConfig(FLAGS_run_dir, config.resolved_yaml, FLAGS_allow_config_change);
      RecordVersion(FLAGS_run_dir, "train, resume '" + FLAGS_resume + "', " + std::to_string(world.size) + " rank(s)");
    };
    Trainer trainer(config.trainer, communicator.get(), FLAGS_run_dir);
    const TrainResult result = trainer.Run(FLAGS_resume);
    if (world.rank == 0)
      std::cout << "train: " << (result.interrupted ? "stopped" : "finished") << " at step " << result.steps
                << ", loss " << result.last_loss << ", run directory " << FLAGS_run_dir << "\n";
    return result.interrupted ? kExitRequeue : 0;
  });
}

// instructflip eval: scores target domains with a checkpoint's model.
int RunEval(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "eval takes no positional arguments");
  const std::optional<double> threshold = ThresholdFlag(kWithoutThresholdEer);
  IF_REQUIRE(FLAGS_explain >= 0, "--explain must be >= 0, got ", FLAGS_explain);
  RequireDirectoryOrAbsent(FLAGS_out, "--out");
  TrainConfig config = LoadTrainConfig(FLAGS_config, SetOverrides());
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  std::unique_ptr<Communicator> communicator = StartRank(world, &config);
  return AbortJobOnError("eval", world, [&] {
    BuiltModel built = BuildModel(config.trainer.model);
    const std::string weights = CheckpointStore::VerifiedModelWeights(FLAGS_checkpoint);
    LoadModelWeights(*built.model, weights);
    built.model->to(config.trainer.device);
    EvalOptions options;
    options.store = config.trainer.store;
    options.domains = absl::StrSplit(FLAGS_targets, ',');
    for (const std::string& domain : options.domains)
      IF_REQUIRE(!domain.empty(), "--targets '", FLAGS_targets, "' has an empty domain name");
    options.batch_per_rank = config.trainer.batch_per_rank;
    options.loader_threads = config.trainer.loader_threads;
    options.seed = config.trainer.seed;
    options.style_question = config.eval_style_question;
    options.checkpoint = weights + " (given by the user)";
    options.threshold = threshold;
    options.explain_per_domain = FLAGS_explain;
    options.progress = ProgressFlags();
    const EvalResult result = Evaluate(built, options, communicator.get(), FLAGS_out);
    if (world.rank == 0) {
      // TensorBoard beside the tables (`tensorboard --logdir OUT`), at the checkpoint's step.
      nlohmann::json summary{{"step", 0}};
      try {
        summary["step"] = CheckpointStore::StepOf(std::filesystem::path(weights).parent_path().string());
      } catch (const Error&) {  // exported weights: no step of their own
      }
      for (const auto& [domain, metrics] : result.domains) summary["domains"][domain] = MetricsToJson(metrics);
      LogEvaluationToTensorBoard(FLAGS_out, summary, FLAGS_out);
      RecordVersion(FLAGS_out, "eval of " + weights + ", " + std::to_string(world.size) + " rank(s)");
      std::cout << ReadFile(EvalFiles{FLAGS_out}.Table());
    }
    return 0;
  });
}

}  // namespace

std::vector<Command> TrainCommands() {
  return {{"train", "", "train InstructFLIP; checkpoints into DIR, resumable; exit 3 after a SIGUSR1/SIGTERM/SIGINT checkpoint",
           {Required("config", "FILE", "training configuration (configs/train/*.yaml)"),
            Required("run_dir", "DIR", "run directory: checkpoints, metrics, resolved config"),
            Optional("resume", "auto|DIR", "auto: the newest complete checkpoint, else fresh; a checkpoint directory; '' fresh"),
            Switch("allow_config_change", "go on in a run directory started with another configuration (recorded)")},
           true, "      (under mpirun -np N or srun for N ranks)", RunTrain},
          {"eval", "", "score target domains (test split) with a trained model: scores.csv, metrics.json/.md, ROC per domain",
           {Required("config", "FILE", "configuration the model was trained with (data.store, eval.style_question)"),
            Required("checkpoint", "DIR|FILE", "checkpoint directory or model.safetensors"),
            Required("targets", "A,B", "target domains, comma-separated"),
            Required("out", "DIR", "output directory"),
            Optional("threshold", "T", "decision threshold in [0, 1] for HTER/ACC")
                .Absent("each domain's own EER threshold, an oracle"),
            Optional("explain", "K", "samples per domain explained (T5 answers + cue map PNGs)"),
            Switch("quiet", "no progress lines"),
            Switch("json", "progress as one JSON object per line")},
           true, "      (under mpirun -np N for N ranks)", RunEval}};
}

}  // namespace instructflip::launch
