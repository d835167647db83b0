// One LODO job as one rank of an MPI job (`instructflip lodo --run-dir DIR
// --job K`), in DIR/jobs/NAME/, at each evaluation point (the final step, and
// every `eval_every` steps when the protocol asks for it):
//   1. train         a training run directory (checkpoints, metrics.jsonl),
//                    resumed from its newest checkpoint; SIGUSR1 -> exit 3
//   2. validate      score the source domains' held-out validation videos;
//                    their pooled EER threshold is the job's threshold (no
//                    target data is used to pick it)
//   3. test          score the targets at that threshold (eval/), also with each
//                    target's own EER threshold (oracle: the reference's mode);
//                    with several points each goes to steps/step-N/
//                    (each evaluated step also goes to the job's TensorBoard:
//                    metrics as scalars, explained images and cue maps)
//   4. result.json   the point `selection` picks (final; source_validation;
//                    target_oracle, labelled ORACLE), written last: a job
//                    with it is finished and skipped
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


// Validation (the threshold, from source videos never trained on) and test of
// one checkpoint; the summary a job's result is made of.
nlohmann::json EvaluateCheckpoint(const std::string& checkpoint, const std::string& rule, const TrainConfig& config,
                                  const LodoProtocol& p, const LodoJob& job, Communicator* communicator,
                                  const std::string& validation_dir, const std::string& eval_dir) {
  const TrainerOptions& t = config.trainer;
  BuiltModel built = BuildModel(t.model);
  LoadModelWeights(*built.model, JoinPath(checkpoint, "model.safetensors"));
  built.model->to(t.device);
  EvalOptions eval;
  eval.store = t.store;
  eval.batch_per_rank = t.batch_per_rank;
  eval.loader_threads = t.loader_threads;
  eval.seed = t.seed;
  eval.style_question = config.eval_style_question;
  eval.checkpoint = std::filesystem::path(checkpoint).filename().string() + ", " + rule;
  eval.progress = {[](const ProgressUpdate& u) { LOG(INFO) << ProgressText(u); }};  // the job's log; the driver relays it
  nlohmann::json summary{{"step", CheckpointStore::StepOf(checkpoint)},
                         {"checkpoint", std::filesystem::path(checkpoint).filename().string()}};
  double threshold = 0.5;
  if (t.validation_fraction > 0) {
    EvalOptions validation = eval;
    validation.domains = job.train;
    validation.split = Split::kTrain;
    validation.holdout = {Holdout::Part::kValidation, t.validation_fraction, t.validation_seed};
    validation.spoof_types = t.spoof_types;  // the hold-out of the samples the run chose from
    const EvalResult validated = Evaluate(built, validation, communicator, validation_dir);
    summary["validation"] = MetricsToJson(validated.pooled);
    if (std::isfinite(validated.pooled.eer_threshold)) {
      threshold = validated.pooled.eer_threshold;
      summary["threshold_mode"] = "EER threshold of the source domains' held-out validation videos (" +
                                  std::to_string(validated.pooled.videos) + " videos)";
    } else {  // still chosen without target data, and said so
      summary["threshold_mode"] = "fixed 0.5: the validation hold-out (" + std::to_string(validated.pooled.videos) +
                                  " videos) has one class only, so it has no EER threshold; raise "
                                  "data.validation_fraction";
    }
  } else {
    summary["threshold_mode"] = "fixed 0.5 (data.validation_fraction is 0: no validation hold-out)";
  }
  summary["threshold"] = threshold;
  EvalOptions test = eval;
  test.domains = job.test;
  test.split = p.targets_split;
  test.subsets = p.target_subsets;
  test.threshold = threshold;
  test.explain_per_domain = p.explain_per_domain;
  for (const std::string& target : job.test)
    if (std::find(job.train.begin(), job.train.end(), target) != job.train.end()) test.seen_domains.push_back(target);
  const EvalResult tested = Evaluate(built, test, communicator, eval_dir);
  for (size_t d = 0; d < tested.domains.size(); ++d) {
    summary["domains"][tested.domains[d].first] = MetricsToJson(tested.domains[d].second);
    summary["reference_mode"][tested.domains[d].first] = MetricsToJson(tested.own_threshold[d]);
  }
  return summary;
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
  // The T5 warm-up is cached by content (seed, settings, initial weights): jobs of one seed share it.
  t.warmup_cache_dir = files.Cache();
  std::unique_ptr<Communicator> communicator = StartRank(world, &config);
  ConnectStopSignals(&t);
  return AbortJobOnError("lodo", world, [&] {
    const bool writer = world.rank == 0;
    auto start = std::chrono::steady_clock::now();
    std::unique_ptr<RunDirectoryClaim> claim;  // held until the job ends
    if (writer) {
      claim = ClaimRunDirectory(job_dir, "job directory");
      WriteRunConfig(job_dir, config.resolved_yaml, /*allow_change=*/false);
      RecordVersion(job_dir, "lodo job " + job.name + ", " + std::to_string(world.size) + " rank(s)");
    }
    communicator->Barrier();
    // 1.-3. At each evaluation point (the last step, and every eval_every
    // steps for `selection`): train up to it (resuming from the newest
    // checkpoint), validate, test. A point already evaluated is not redone.
    const CheckpointStore checkpoints(job_dir, t.keep_last);
    const std::vector<int64_t> points = EvaluationSteps(t.total_steps, p.eval_every);
    const bool final_only = points.size() == 1;
    std::vector<nlohmann::json> evaluated;
    for (const int64_t point : points) {
      const std::string step_dir = files.EvaluationStep(job.name, point);
      const std::string summary_path = JoinPath(step_dir, "summary.json");
      if (!final_only && PathExists(summary_path)) {
        try {
          evaluated.push_back(nlohmann::json::parse(ReadFile(summary_path)));
        } catch (const nlohmann::json::exception& e) {
          IF_FAIL(summary_path, ": not valid JSON (", e.what(), "); delete it to evaluate step ", point, " again");
        }
        continue;
      }
      std::optional<std::string> checkpoint = checkpoints.FindLatestComplete();
      if (!checkpoint || CheckpointStore::StepOf(*checkpoint) < point) {
        Trainer trainer(t, communicator.get(), job_dir);
        const TrainResult trained = trainer.Run("auto", point);
        if (writer) RecordCost(files.Cost(job.name), "train", SecondsSince(start), world.size);
        // Stopped, or signalled at the very last step: evaluate after the requeue.
        if (trained.interrupted || StopWasRequested()) return kExitRequeue;
        checkpoint = checkpoints.FindLatestComplete();
      }
      IF_REQUIRE(checkpoint && CheckpointStore::StepOf(*checkpoint) == point, "lodo: job ", job.name,
                 " has no checkpoint of step ", point, " in ", job_dir, " to evaluate",
                 checkpoint ? " (its newest is " + *checkpoint + ")" : std::string());
      start = std::chrono::steady_clock::now();
      const std::string rule = final_only ? DescribeCheckpointSelection(p.selection, p.eval_every)
                                          : "evaluated for selection " + std::string(kCheckpointSelections.Name(p.selection));
      nlohmann::json summary = EvaluateCheckpoint(
          *checkpoint, rule, config, p, job, communicator.get(),
          final_only ? files.Validation(job.name) : JoinPath(step_dir, "validation"),
          final_only ? files.Evaluation(job.name) : JoinPath(step_dir, "eval"));
      if (writer) {
        RecordCost(files.Cost(job.name), "eval", SecondsSince(start), world.size);
        if (!final_only) WriteFileAtomic(summary_path, summary.dump(2) + "\n");
        try {  // a picture for the researcher: never the reason a finished evaluation is lost
          LogEvaluationToTensorBoard(job_dir, summary, final_only ? files.Evaluation(job.name) : JoinPath(step_dir, "eval"));
        } catch (const std::exception& e) {
          LOG(WARNING) << "lodo: job " << job.name << ": the evaluation of step " << point
                       << " is not in TensorBoard: " << e.what();
        }
      }
      evaluated.push_back(std::move(summary));
      start = std::chrono::steady_clock::now();
    }
    if (writer) {
      // 4. The selected step's evaluation is the job's result, written last.
      const size_t chosen = SelectEvaluation(evaluated, p.selection, job);
      nlohmann::json result{{"job", job.name},
                            {"train_domains", job.train},
                            {"targets", job.test},
                            {"selection", kCheckpointSelections.Name(p.selection)},
                            {"checkpoint_rule", DescribeCheckpointSelection(p.selection, p.eval_every)},
                            {"training_style_question", kStyleQuestionRules.Name(t.style_question)},
                            {"style_question", kScoringStyleQuestions.Name(config.eval_style_question)},
                            {"targets_split", kTargetsSplits.Name(p.targets_split)}};
      if (!p.target_subsets.empty()) result["target_subsets"] = DescribeTargetSubsets(p.target_subsets);
      result.update(evaluated[chosen]);
      if (!final_only) {
        for (const nlohmann::json& e : evaluated)
          result["evaluated_steps"].push_back({{"step", e.at("step")},
                                               {"validation_eer", e.value(nlohmann::json::json_pointer("/validation/eer"), nlohmann::json())},
                                               {"mean_target_hter", MeanTargetHter(e, "domains", job)},
                                               {"mean_target_hter_oracle", MeanTargetHter(e, "reference_mode", job)}});
        // The selected step's files where a job's evaluation lives (report, explanations).
        const std::string chosen_dir = files.EvaluationStep(job.name, evaluated[chosen].at("step").get<int64_t>());
        for (const auto& [from, to] : {std::pair{JoinPath(chosen_dir, "eval"), files.Evaluation(job.name)},
                                       std::pair{JoinPath(chosen_dir, "validation"), files.Validation(job.name)}}) {
          std::filesystem::remove_all(to);
          if (PathExists(from)) std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
        }
      }
      WriteFileAtomic(files.Result(job.name), result.dump(2) + "\n");
      std::cout << "lodo: job " << job.name << " finished (step " << result["step"] << ", "
                << kCheckpointSelections.Name(p.selection) << "): " << ReadFile(EvalFiles{files.Evaluation(job.name)}.Table());
    }
    return 0;
  });
}

}  // namespace instructflip::launch
