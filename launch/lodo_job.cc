// One LODO job as one rank of an MPI job (`instructflip lodo --run-dir DIR
// --job K`), in DIR/jobs/NAME/:
//   1. train         a training run directory (checkpoints, metrics.jsonl),
//                    resumed from its newest checkpoint; SIGUSR1 -> exit 3
//   2. validate      score the source domains' held-out validation videos;
//                    their pooled EER threshold is the job's threshold (no
//                    target data is used to pick it or the checkpoint: the
//                    final step's weights are evaluated)
//   3. test          score the targets at that threshold (eval/), also with each
//                    target's own EER threshold (oracle: the reference's mode)
//   4. result.json   written last: a job with it is finished and skipped
// Scoring never sees a label: each sample's style question follows
// eval.style_question (model/scoring.h). cost.json accumulates each run
// segment's wall time x ranks.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "launch/commands.h"
#include "launch/job_runtime.h"
#include "launch/lodo_protocol.h"
#include "launch/version.h"
#include "model/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluator.h"
#include "trainer/trainer.h"
#include "trainer/run_files.h"

namespace instructflip::launch {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int RunLodoJob(const std::string& run_dir, int index) {
  const LodoProtocol p = LoadSavedProtocol(run_dir);
  const LodoRunFiles files{run_dir};
  IF_REQUIRE(index >= 0 && index < static_cast<int>(p.jobs.size()), "lodo: --job ", index, " is outside 0..",
             p.jobs.size() - 1, " (", run_dir, "/protocol.yaml has ", p.jobs.size(), " jobs)");
  const LodoJob& job = p.jobs[index];
  const std::string job_dir = files.Job(job.name);
  InstallStopSignals();
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  if (files.Finished(job.name)) {
    if (world.rank == 0) std::cout << "lodo: job " << job.name << " is already finished\n";
    return 0;
  }
  TrainConfig config = JobTrainConfig(p, job);
  TrainerOptions& t = config.trainer;
  // The global batch was planned for p.ranks ranks; another world size keeps it.
  const int64_t step_batch = int64_t(t.batch_per_rank) * p.ranks;
  IF_REQUIRE(step_batch % world.size == 0, "lodo: job ", job.name, " plans ", step_batch, " samples per micro-step (",
             t.batch_per_rank, " x ", p.ranks, " ranks), which ", world.size, " ranks cannot share evenly");
  t.batch_per_rank = static_cast<int>(step_batch / world.size);
  // Every job of the run starts from the same seed: one T5 warm-up serves all.
  t.warmup_cache_dir = files.Cache();
  std::unique_ptr<Communicator> communicator = StartRank(world, &config);
  ConnectStopSignals(&t);
  return AbortJobOnError("lodo", world, [&] {
    const bool writer = world.rank == 0;
    auto start = std::chrono::steady_clock::now();
    std::unique_ptr<FileLock> claim;  // held until the job ends
    if (writer) {
      claim = ClaimRunDirectory(job_dir, "job directory");
      WriteRunConfig(job_dir, config.resolved_yaml, /*allow_change=*/false);
      RecordVersion(job_dir, "lodo job " + job.name + ", " + std::to_string(world.size) + " rank(s)");
    }
    communicator->Barrier();
    // 1. Train (or resume) unless the final checkpoint is already there.
    const CheckpointStore checkpoints(job_dir, t.keep_last);
    std::optional<std::string> final_checkpoint = checkpoints.FindLatestComplete();
    if (!final_checkpoint || CheckpointStore::StepOf(*final_checkpoint) < t.total_steps) {
      Trainer trainer(t, communicator.get(), job_dir);
      const TrainResult trained = trainer.Run("auto");
      if (writer) RecordCost(files.Cost(job.name), "train", SecondsSince(start), world.size);
      // Stopped, or signalled at the very last step: evaluate after the requeue.
      if (trained.interrupted || StopWasRequested()) return kExitRequeue;
      final_checkpoint = checkpoints.FindLatestComplete();
    }
    IF_REQUIRE(final_checkpoint && CheckpointStore::StepOf(*final_checkpoint) == t.total_steps, "lodo: job ",
               job.name, " has no final checkpoint in ", job_dir);
    start = std::chrono::steady_clock::now();
    BuiltModel built = BuildModel(t.model);
    LoadModelWeights(*built.model, JoinPath(*final_checkpoint, "model.safetensors"));
    built.model->to(t.device);
    EvalOptions eval;
    eval.store = t.store;
    eval.batch_per_rank = t.batch_per_rank;
    eval.loader_threads = t.loader_threads;
    eval.seed = t.seed;
    eval.style_question = config.eval_style_question;
    eval.checkpoint = std::filesystem::path(*final_checkpoint).filename().string() + ", the " + kCheckpointRule;
    // 2. Validate: the threshold comes from source-domain videos never trained on.
    nlohmann::json result{{"job", job.name}, {"train_domains", job.train}, {"targets", job.test},
                          {"checkpoint", std::filesystem::path(*final_checkpoint).filename().string()},
                          {"checkpoint_rule", kCheckpointRule},
                          {"training_style_question", StyleQuestionRuleName(t.style_question)},
                          {"style_question", ScoringStyleQuestionName(eval.style_question)}};
    double threshold = 0.5;
    if (t.validation_fraction > 0) {
      EvalOptions validation = eval;
      validation.domains = job.train;
      validation.split = Split::kTrain;
      validation.holdout = {Holdout::Part::kValidation, t.validation_fraction, t.validation_seed};
      validation.spoof_types = t.spoof_types;  // the hold-out of the samples the run chose from
      const EvalResult validated = Evaluate(built, validation, communicator.get(), files.Validation(job.name));
      result["validation"] = MetricsToJson(validated.pooled);
      if (std::isfinite(validated.pooled.eer_threshold)) {
        threshold = validated.pooled.eer_threshold;
        result["threshold_mode"] = "EER threshold of the source domains' held-out validation videos (" +
                                   std::to_string(validated.pooled.videos) + " videos)";
      } else {  // still chosen without target data, and said so
        result["threshold_mode"] = "fixed 0.5: the validation hold-out (" + std::to_string(validated.pooled.videos) +
                                   " videos) has one class only, so it has no EER threshold; raise "
                                   "data.validation_fraction";
      }
    } else {
      result["threshold_mode"] = "fixed 0.5 (data.validation_fraction is 0: no validation hold-out)";
    }
    result["threshold"] = threshold;
    // 3. Test the held-out targets at that threshold.
    EvalOptions test = eval;
    test.domains = job.test;
    test.split = p.targets_split;
    test.subsets = p.target_subsets;
    result["targets_split"] = TargetsSplitName(p.targets_split);
    if (!p.target_subsets.empty()) result["target_subsets"] = DescribeTargetSubsets(p.target_subsets);
    test.threshold = threshold;
    test.explain_per_domain = p.explain_per_domain;
    const EvalResult tested = Evaluate(built, test, communicator.get(), files.Evaluation(job.name));
    if (writer) {
      for (size_t d = 0; d < tested.domains.size(); ++d) {
        result["domains"][tested.domains[d].first] = MetricsToJson(tested.domains[d].second);
        result["reference_mode"][tested.domains[d].first] = MetricsToJson(tested.own_threshold[d]);
      }
      RecordCost(files.Cost(job.name), "eval", SecondsSince(start), world.size);
      // 4. The marker of a finished job, written last.
      WriteFileAtomic(files.Result(job.name), result.dump(2) + "\n");
      std::cout << "lodo: job " << job.name << " finished: " << ReadFile(EvalFiles{files.Evaluation(job.name)}.Table());
    }
    return 0;
  });
}

}  // namespace instructflip::launch
