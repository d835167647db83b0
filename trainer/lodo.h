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

#include "dataio/schema.h"
#include "trainer/evaluator.h"
#include "trainer/run_files.h"

namespace instructflip {

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
  std::vector<std::string> overrides;  // --set given when planning, applied to every job
  std::vector<LodoJob> jobs;
};

// Replaces each job by one per seed of p->seeds (NAME_seedS, group NAME), then
// clears the seeds. Jobs planned with seeds already are refused.
void ExpandSeeds(LodoProtocol* p);

// "test" or "all" (the protocol key's values), and the words tables use.
std::string TargetsSplitName(const std::optional<Split>& split);
std::string DescribeTargetsSplit(const std::optional<Split>& split);
// "msu: the first 9600 samples of its test split; ..." ("" if none).
std::string DescribeTargetSubsets(const std::map<std::string, TargetSubset>& subsets);

// How a job's evaluated checkpoint is chosen.
inline constexpr char kCheckpointRule[] = "final step (chosen without target data)";

// Adds one run segment (a training launch, or the evaluation) to the job's cost.json.
void RecordCost(const std::string& cost_json, const std::string& phase, double wall_s, int ranks);

// One table over every held-out target of the protocol: writes lodo.json,
// lodo.md and report.html and returns the Markdown. Every job must be finished.
std::string AggregateLodo(const std::string& run_dir, const LodoProtocol& protocol);

}  // namespace instructflip
