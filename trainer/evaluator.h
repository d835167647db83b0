// Distributed evaluation: every rank scores its slice of each target domain
// (the loader pads the tail, so each sample is scored exactly once), the
// scores are gathered to every rank (all ranks' scores: the reference's
// multi-GPU gather never runs), and rank 0 writes
//   OUT/scores.csv        score,label,video_id,domain,sample_index,spoof_type
//                         (store order; spoof_type 0 live, 1..10 kSpoofTypeNames,
//                         -1 unknown: for the report's per-attack breakdown)
//   OUT/metrics.json      per domain and mean, in percent, with the threshold mode,
//                         the checkpoint and the style-question rule
//   OUT/metrics.md        the same as a Markdown table
//   OUT/roc_<domain>.csv  fpr,tpr,threshold
//   OUT/explanations.jsonl + OUT/explanations/<domain>/NNN_{image,cue}.png
//                         with explain_per_domain > 0: the T5's answers to the
//                         content and style questions and the cue map of a few
//                         samples per domain (rank 0's first videos, live and
//                         spoof alternating)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataio/base/progress.h"
#include "dataio/loader.h"
#include "dist/communicator.h"
#include "model/build.h"
#include "model/instructions.h"
#include "trainer/metrics.h"

namespace instructflip {

// Which samples of one target are scored when they are not `split` of it all:
// the reference scores only the first 9,600 CelebA-Spoof test rows.
struct TargetSubset {
  std::optional<Split> split;  // nullopt: both splits
  int64_t first = 0;           // > 0: the first N of them in store order
  bool operator==(const TargetSubset& o) const { return split == o.split && first == o.first; }
};

struct EvalOptions {
  std::string store;
  std::vector<std::string> domains;  // targets; each evaluated on its own
  std::optional<Split> split = Split::kTest;
  std::map<std::string, TargetSubset> subsets;  // per target, instead of `split`
  // Targets the model trained on (a LODO job's seen domain): scored and listed,
  // marked, and left out of `mean` and `pooled`.
  std::vector<std::string> seen_domains;
  Holdout holdout;                   // e.g. only the validation hold-out of the training split
  std::vector<int> spoof_types;      // with a training hold-out: the run's data.spoof_types (same hold-out)
  int batch_per_rank = 32;
  int loader_threads = 2;
  uint64_t seed = 2;                 // style-question draws (per sample, reproducible)
  // The style question of each sample, never from its label (model/scoring.h).
  ScoringStyleQuestion style_question = ScoringStyleQuestion::kUniform;
  // Empty: each domain's own EER threshold, chosen on its labels (oracle; the
  // reference's mode).
  std::optional<double> threshold;
  int explain_per_domain = 0;        // samples per domain explained (answers + cue map)
  // Which weights are scored and how they were chosen, for the tables.
  std::string checkpoint = "unknown";
  // Rank 0's batches per domain (dataio/base/progress.h); empty: none.
  ProgressSink progress;
};

struct EvalResult {
  std::vector<std::pair<std::string, DomainMetrics>> domains;
  DomainMetrics mean;
  std::vector<DomainMetrics> own_threshold;  // per domain at its own EER threshold (oracle; the reference's mode)
  DomainMetrics pooled;              // all domains' videos as one set (e.g. a validation threshold)
  std::vector<ScoredSample> scores;  // all domains, store order
};

// `model` in eval mode is used as it is (weights already loaded). Writes the
// files above into `out_dir` on rank 0 when it is not empty.
EvalResult Evaluate(BuiltModel& model, const EvalOptions& options, Communicator* communicator,
                    const std::string& out_dir);

// An evaluated checkpoint in TensorBoard (new event file in `events_dir`) at
// summary["step"]: summary["validation"] (metrics JSON) and summary["threshold"]
// as validation/*, each of summary["domains"] as test/DOMAIN/* (HTER, AUC, EER,
// TPR@FPR=1%, APCER, BPCER, ACER), and `eval_dir`'s explained images and cue
// maps as explain/DOMAIN/N_{image,cue}.
void LogEvaluationToTensorBoard(const std::string& events_dir, const nlohmann::json& summary,
                                const std::string& eval_dir);

}  // namespace instructflip
