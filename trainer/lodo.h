// The leave-one-domain-out experiment's data and results, below the command
// line: a protocol (jobs "train on these domains, test on those"), the files of
// a LODO run directory, each job's cost record, and the aggregation of the
// finished jobs into one table (lodo.json, lodo.md, report.html). Parsing the
// protocol's YAML and launching jobs live in launch/ (lodo_protocol.h,
// lodo_command.cc); one job's pipeline in launch/lodo_job.cc.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataio/base/choices.h"
#include "dataio/schema.h"
#include "trainer/evaluator.h"
#include "trainer/run_files.h"

namespace instructflip {

// How a job's evaluated checkpoint is chosen (`selection`), among the steps
// evaluated every `eval_every` steps and at the end.
enum class CheckpointSelection {
  kFinal,             // the last step (default; no data chooses it)
  kSourceValidation,  // lowest EER on the source domains' validation hold-out (honest)
  kTargetOracle,      // lowest mean target HTER at each target's own EER threshold: the reference's, oracle
};
inline const Choices<CheckpointSelection> kCheckpointSelections{{"final", CheckpointSelection::kFinal},
                                                                {"source_validation", CheckpointSelection::kSourceValidation},
                                                                {"target_oracle", CheckpointSelection::kTargetOracle}};
// What the tables say about the rule ("ORACLE: ..." for target_oracle).
std::string DescribeCheckpointSelection(CheckpointSelection selection, int64_t eval_every);
// The steps evaluated: eval_every, 2 x eval_every, ... and always total_steps.
std::vector<int64_t> EvaluationSteps(int64_t total_steps, int64_t eval_every);

struct LodoJob {
  std::string name;
  std::vector<std::string> train, test;
  // Planned with seeds (`lodo --seeds`): this job is one seed of `group`.
  std::optional<uint64_t> seed;
  std::string group;  // the protocol's job name ("" without seeds)
};

struct LodoProtocol {
  std::string name;
  std::string train_config;            // absolute path
  int ranks = 1;                       // MPI ranks per job (the global batch is planned for these)
  int explain_per_domain = 0;
  // Which samples of a target are scored (`targets_split`): its test split, or
  // (nullopt, "all") every sample of it, as the reference scores a target.
  std::optional<Split> targets_split = Split::kTest;
  // Per target domain, another choice of scored samples (`target_subsets`).
  // A training domain may be a target only through its test split here: it is
  // then a seen domain, reported apart and left out of the held-out mean.
  std::map<std::string, TargetSubset> target_subsets;
  // Each job once per seed (`seeds`, or `lodo --seeds`); planning expands
  // them into jobs NAME_seedS (ExpandSeeds), the saved plan holds those.
  std::vector<uint64_t> seeds;
  int64_t eval_every = 0;  // > 0: evaluate every N optimizer steps too (for `selection`)
  CheckpointSelection selection = CheckpointSelection::kFinal;
  std::vector<std::string> overrides;  // --set given when planning, applied to every job
  std::vector<LodoJob> jobs;
};

// One evaluated step of a job (launch/lodo_job.cc writes it): "step",
// "validation" (metrics, when there is a hold-out), "domains" (at the
// validation threshold) and "reference_mode" (each target's own EER threshold).
// Mean HTER over the job's held-out targets (not its seen ones) in `mode`;
// null if no target has one.
nlohmann::json MeanTargetHter(const nlohmann::json& summary, const char* mode, const LodoJob& job);
// The index of the evaluation `selection` picks: source_validation the lowest
// validation EER, target_oracle the lowest oracle-mode mean target HTER; the
// earliest of equals, and the last when none has the value compared.
size_t SelectEvaluation(const std::vector<nlohmann::json>& evaluated, CheckpointSelection selection,
                        const LodoJob& job);

// Replaces each job by one per seed of p->seeds (NAME_seedS, group NAME), then
// clears the seeds. Jobs planned with seeds already are refused.
void ExpandSeeds(LodoProtocol* p);

// targets_split and target_subsets.*.split: a target's test split, or all of it
// (nullopt); DescribeTargetsSplit: the words tables use.
inline const Choices<std::optional<Split>> kTargetsSplits{{"test", Split::kTest}, {"all", std::nullopt}};
std::string DescribeTargetsSplit(const std::optional<Split>& split);
// "msu: the first 9600 samples of its test split; ..." ("" if none).
std::string DescribeTargetSubsets(const std::map<std::string, TargetSubset>& subsets);

// Adds one run segment (a training launch, or the evaluation) to the job's cost.json.
void RecordCost(const std::string& cost_json, const std::string& phase, double wall_s, int ranks);

// One table over every held-out target of the protocol: writes lodo.json,
// lodo.md and report.html and returns the Markdown. Every job must be finished.
std::string AggregateLodo(const std::string& run_dir, const LodoProtocol& protocol);

}  // namespace instructflip
