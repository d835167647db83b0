#include "trainer/lodo.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/base/torch_compat.h"
#include "model/instructions.h"
#include "trainer/metrics.h"
#include "trainer/report.h"

namespace instructflip {

void RecordCost(const std::string& path, const std::string& phase, double wall_s, int ranks) {
  nlohmann::json cost = {{"segments", nlohmann::json::array()}};
  if (PathExists(path)) cost = nlohmann::json::parse(ReadFile(path));
  cost["segments"].push_back({{"phase", phase},
                              {"wall_s", wall_s},
                              {"ranks", ranks},
                              {"device", torch::cuda::is_available() ? "cuda" : "cpu"}});
  WriteFileAtomic(path, cost.dump(2) + "\n");
}

std::string DescribeTargetsSplit(const std::optional<Split>& split) {
  return split ? std::string("the ") + kSplits.Name(*split) + " split of each target"
               : "every sample of each target (train and test splits), as the reference scores them";
}

std::string DescribeCheckpointSelection(CheckpointSelection selection, int64_t eval_every) {
  const std::string among =
      eval_every > 0 ? "the step, of those evaluated every " + std::to_string(eval_every) + " steps and the last, "
                     : "the step ";
  switch (selection) {
    case CheckpointSelection::kFinal: return "final step (chosen without target data)";
    case CheckpointSelection::kSourceValidation:
      return among + "with the lowest EER on the source domains' validation hold-out (chosen without target data)";
    case CheckpointSelection::kTargetOracle:
      return "ORACLE: " + among +
             "with the lowest mean target HTER at each target's own EER threshold, chosen on the target labels "
             "(the reference's rule)";
  }
  return "";
}

std::vector<int64_t> EvaluationSteps(int64_t total_steps, int64_t eval_every) {
  std::vector<int64_t> steps;
  if (eval_every > 0)
    for (int64_t s = eval_every; s < total_steps; s += eval_every) steps.push_back(s);
  steps.push_back(total_steps);
  return steps;
}

nlohmann::json MeanTargetHter(const nlohmann::json& summary, const char* mode, const LodoJob& job) {
  double sum = 0;
  int count = 0;
  for (const std::string& target : job.test) {
    if (std::find(job.train.begin(), job.train.end(), target) != job.train.end()) continue;
    const nlohmann::json hter = summary.value(nlohmann::json::json_pointer("/" + std::string(mode) + "/" + target + "/hter"),
                                              nlohmann::json());
    if (hter.is_number()) sum += hter.get<double>(), ++count;
  }
  return count > 0 ? nlohmann::json(sum / count) : nlohmann::json();
}

size_t SelectEvaluation(const std::vector<nlohmann::json>& evaluated, CheckpointSelection selection,
                        const LodoJob& job) {
  size_t chosen = evaluated.size() - 1;
  if (selection == CheckpointSelection::kFinal) return chosen;
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < evaluated.size(); ++i) {
    const nlohmann::json value =
        selection == CheckpointSelection::kSourceValidation
            ? evaluated[i].value(nlohmann::json::json_pointer("/validation/eer"), nlohmann::json())
            : MeanTargetHter(evaluated[i], "reference_mode", job);
    if (value.is_number() && value.get<double>() < best) {
      best = value.get<double>();
      chosen = i;
    }
  }
  return chosen;
}

void ExpandSeeds(LodoProtocol* p) {
  if (p->seeds.empty()) return;
  std::vector<LodoJob> expanded;
  for (const LodoJob& job : p->jobs) {
    IF_REQUIRE(!job.seed, "lodo: job ", job.name, " is already one seed of ", job.group, "; seeds cannot be planned twice");
    for (const uint64_t seed : p->seeds) {
      LodoJob one = job;
      one.name = job.name + "_seed" + std::to_string(seed);
      one.seed = seed;
      one.group = job.name;
      expanded.push_back(std::move(one));
    }
  }
  std::set<std::string> names;
  for (const LodoJob& job : expanded)
    IF_REQUIRE(names.insert(job.name).second, "lodo: two jobs would be named ", job.name, " once seeded");
  p->jobs = std::move(expanded);
  p->seeds.clear();
}

std::string DescribeTargetSubsets(const std::map<std::string, TargetSubset>& subsets) {
  std::vector<std::string> parts;
  for (const auto& [domain, s] : subsets)
    parts.push_back(domain + ": " + (s.first > 0 ? "the first " + std::to_string(s.first) + " samples of " : "") +
                    (s.split ? std::string("its ") + kSplits.Name(*s.split) + " split"
                             : std::string("both its splits")));
  return absl::StrJoin(parts, "; ");
}

namespace {

// Over seeds: the mean and sample standard deviation (n - 1) of the paper's
// three columns, per (job, target) and for the held-out mean of each seed.
struct SeedSpread {
  std::vector<double> hter, auc, tpr;
  void Add(const DomainMetrics& m) {
    hter.push_back(m.hter);
    auc.push_back(m.auc);
    tpr.push_back(m.tpr_at_fpr_1pct);
  }
};

std::pair<double, double> MeanAndStd(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  const double mean = sum / static_cast<double>(v.size());
  if (v.size() < 2) return {mean, std::nan("")};
  double squares = 0;
  for (double x : v) squares += (x - mean) * (x - mean);
  return {mean, std::sqrt(squares / static_cast<double>(v.size() - 1))};
}

nlohmann::json SpreadJson(const SeedSpread& s) {
  nlohmann::json out;
  for (const auto& [key, values] : {std::pair<const char*, const std::vector<double>*>{"hter", &s.hter},
                                    {"auc", &s.auc}, {"tpr_at_fpr_1pct", &s.tpr}}) {
    const auto [mean, std] = MeanAndStd(*values);
    out[key] = {{"mean", std::isfinite(mean) ? nlohmann::json(mean) : nlohmann::json()},
                {"std", std::isfinite(std) ? nlohmann::json(std) : nlohmann::json()}};
  }
  return out;
}

std::string SpreadCell(const std::vector<double>& values) {
  const auto [mean, std] = MeanAndStd(values);
  std::ostringstream cell;
  cell << std::fixed << std::setprecision(2);
  if (std::isfinite(mean)) cell << mean; else cell << "–";
  cell << " ± ";
  if (std::isfinite(std)) cell << std; else cell << "–";
  return cell.str();
}

// Rows of (job group, target) with each seed's metrics, in protocol order.
struct SeededRows {
  std::vector<std::pair<std::string, std::string>> order;
  std::map<std::pair<std::string, std::string>, SeedSpread> rows;
  std::map<uint64_t, std::vector<DomainMetrics>> held_out;  // seed -> its held-out targets
  std::set<std::pair<std::string, std::string>> seen;        // rows of a seen domain
  std::vector<uint64_t> seeds;
};

// The "mean ± std over seeds" table, and its JSON into *out.
std::string SeedTable(const SeededRows& s, nlohmann::json* out) {
  SeedSpread overall;
  for (const auto& [seed, metrics] : s.held_out) overall.Add(MeanMetrics(metrics));
  (*out)["seeds"] = s.seeds;
  (*out)["mean"] = SpreadJson(overall);
  std::ostringstream md;
  md << "| job | target | HTER | AUC | TPR@FPR=1% |\n|---|---|---|---|---|\n";
  for (const auto& key : s.order) {
    const SeedSpread& r = s.rows.at(key);
    nlohmann::json row = SpreadJson(r);
    row["job"] = key.first;
    row["target"] = key.second;
    row["seen_domain"] = s.seen.count(key) > 0;
    (*out)["rows"].push_back(row);
    md << "| " << key.first << " | " << key.second << (s.seen.count(key) ? " (seen domain, not in the mean)" : "")
       << " | " << SpreadCell(r.hter) << " | " << SpreadCell(r.auc)
       << " | " << SpreadCell(r.tpr) << " |\n";
  }
  md << "| **mean** | | " << SpreadCell(overall.hter) << " | " << SpreadCell(overall.auc) << " | "
     << SpreadCell(overall.tpr) << " |\n";
  return md.str();
}

}  // namespace

std::string AggregateLodo(const std::string& run_dir, const LodoProtocol& p) {
  const LodoRunFiles files{run_dir};
  std::vector<std::string> unfinished;
  for (const LodoJob& job : p.jobs)
    if (!files.Finished(job.name)) unfinished.push_back(job.name);
  IF_REQUIRE(unfinished.empty(), "lodo: cannot aggregate ", run_dir, ": unfinished jobs ",
             absl::StrJoin(unfinished, ", "));
  nlohmann::json out{{"protocol", p.name},
                     {"threshold_mode", "validation: EER threshold on held-out videos of each job's source domains"},
                     {"checkpoint_rule", DescribeCheckpointSelection(p.selection, p.eval_every)},
                     {"targets_split", kTargetsSplits.Name(p.targets_split)}};
  if (!p.target_subsets.empty()) out["target_subsets"] = DescribeTargetSubsets(p.target_subsets);
  out["reference_mode"]["threshold_mode"] = kOracleThresholdMode;
  std::vector<DomainMetrics> honest, reference;
  nlohmann::json cost_jobs = nlohmann::json::array();
  double total_wall = 0, total_rank_seconds = 0, train_rank_seconds = 0;
  std::vector<MetricsTableRow> rows, reference_rows;  // per target, in both threshold modes
  std::ostringstream cost_rows;
  cost_rows << std::fixed << std::setprecision(4);
  std::map<std::string, std::set<std::string>> style_rules;  // key -> the jobs' rules
  std::vector<std::string> fixed_threshold_jobs;  // their validation hold-out had one class: 0.5
  SeededRows seeded, seeded_reference;            // jobs planned with seeds, per threshold mode
  for (const LodoJob& job : p.jobs) {
    const std::string result_path = files.Result(job.name);
    nlohmann::json result;
    try {
      result = nlohmann::json::parse(ReadFile(result_path));
      // Results of runs before the style-question rules carry none: say so.
      style_rules["style_question"].insert(
          result.value("style_question", std::string("unknown (an older run: it may have followed the label)")));
      style_rules["training_style_question"].insert(
          result.value("training_style_question", std::string("unknown (an older run: reference)")));
      if (result.value("threshold_mode", std::string()).rfind("fixed 0.5", 0) == 0)
        fixed_threshold_jobs.push_back(job.name);
      // The same target in both threshold modes: into its table, JSON rows and mean.
      // A target the job trained on (its test split, target_subsets) is a seen
      // domain: listed, marked, and left out of the held-out mean.
      auto add = [&](const char* mode, const std::string& target, nlohmann::json& json_rows,
                     std::vector<DomainMetrics>& metrics, std::vector<MetricsTableRow>& md) {
        nlohmann::json r = result.at(mode).at(target);
        const bool seen = std::find(job.train.begin(), job.train.end(), target) != job.train.end();
        if (!seen) metrics.push_back(MetricsFromJson(r));
        r["job"] = job.name;
        r["target"] = target;
        r["train_domains"] = job.train;
        r["seen_domain"] = seen;
        json_rows.push_back(r);
        md.push_back({{job.name, seen ? target + " (seen domain, not in the mean)" : target,
                       absl::StrJoin(job.train, "+")},
                      MetricsFromJson(r)});
        if (!job.seed) return;
        SeededRows& s = std::string(mode) == "domains" ? seeded : seeded_reference;
        const auto key = std::make_pair(job.group, target);
        if (!s.rows.count(key)) s.order.push_back(key);
        s.rows[key].Add(md.back().metrics);
        if (!seen) s.held_out[*job.seed].push_back(md.back().metrics);
        if (seen) s.seen.insert(key);
        if (std::find(s.seeds.begin(), s.seeds.end(), *job.seed) == s.seeds.end()) s.seeds.push_back(*job.seed);
      };
      for (const std::string& target : job.test) {
        add("domains", target, out["rows"], honest, rows);
        add("reference_mode", target, out["reference_mode"]["rows"], reference, reference_rows);
      }
    } catch (const nlohmann::json::exception& e) {
      IF_FAIL(result_path, ": ", e.what());
    }
    double wall = 0, rank_seconds = 0, train_seconds = 0;
    std::string device = "cpu";
    int ranks = p.ranks;
    const std::string cost_path = files.Cost(job.name);
    if (PathExists(cost_path)) {
      const nlohmann::json cost = nlohmann::json::parse(ReadFile(cost_path));
      for (const nlohmann::json& segment : cost.at("segments")) {
        const double w = segment.at("wall_s").get<double>();
        ranks = segment.at("ranks").get<int>();
        device = segment.at("device").get<std::string>();
        wall += w;
        rank_seconds += w * ranks;
        if (segment.at("phase") == "train") train_seconds += w * ranks;
      }
    }
    total_wall += wall;
    total_rank_seconds += rank_seconds;
    train_rank_seconds += train_seconds;
    cost_jobs.push_back({{"job", job.name}, {"wall_s", wall}, {"ranks", ranks}, {"rank_hours", rank_seconds / 3600},
                         {"train_rank_hours", train_seconds / 3600}, {"device", device}});
    cost_rows << "| " << job.name << " | " << std::setprecision(1) << wall << " | " << ranks << " | "
              << std::setprecision(4) << rank_seconds / 3600 << " | " << device << " |\n";
  }
  for (const auto& [key, rules] : style_rules) out[key] = absl::StrJoin(rules, " / ");
  if (!fixed_threshold_jobs.empty())
    out["threshold_mode"] = out["threshold_mode"].get<std::string>() + "; fixed 0.5 for " +
                            absl::StrJoin(fixed_threshold_jobs, ", ") +
                            " (their hold-out had one class only: raise data.validation_fraction)";
  const DomainMetrics mean = MeanMetrics(honest), reference_mean = MeanMetrics(reference);
  rows.push_back({{"**mean**", "", ""}, mean});
  reference_rows.push_back({{"**mean**", "", ""}, reference_mean});
  const std::vector<std::string> kKeys = {"job", "target", "trained on"};
  out["mean"] = MetricsToJson(mean);
  out["reference_mode"]["mean"] = MetricsToJson(reference_mean);
  const int trainings = static_cast<int>(p.jobs.size());
  const int targets = static_cast<int>(honest.size());
  // One training per held-out target (leave-one-out) would cost `targets`
  // trainings of the mean cost seen here, plus the same evaluation.
  const double one_per_target = targets * train_rank_seconds / trainings + (total_rank_seconds - train_rank_seconds);
  out["cost"] = {{"jobs", cost_jobs},
                 {"total_wall_s", total_wall},
                 {"total_rank_hours", total_rank_seconds / 3600},
                 {"trainings", trainings},
                 {"targets", targets},
                 {"rank_hours_per_target", total_rank_seconds / 3600 / targets},
                 {"one_training_per_target_rank_hours", one_per_target / 3600},
                 {"saving_vs_one_training_per_target", total_rank_seconds > 0 ? one_per_target / total_rank_seconds : 1.0}};
  std::string seed_table, seed_reference_table;
  if (!seeded.seeds.empty()) {
    seed_table = SeedTable(seeded, &out["over_seeds"]);
    seed_reference_table = SeedTable(seeded_reference, &out["reference_mode"]["over_seeds"]);
  }
  WriteFileAtomic(files.Json(), out.dump(2) + "\n");

  std::ostringstream md;
  md << std::fixed << std::setprecision(2) << "## " << p.name << ": held-out targets\n\n"
     << "Threshold: " << out["threshold_mode"].get<std::string>() << ". Checkpoint: " << out["checkpoint_rule"].get<std::string>()
     << ". Style question at test: " << DescribeScoringStyleQuestion(out["style_question"].get<std::string>())
     << "; in training: " << out["training_style_question"].get<std::string>()
     << ". Scored: " << DescribeTargetsSplit(p.targets_split)
     << (p.target_subsets.empty() ? "" : "; except " + DescribeTargetSubsets(p.target_subsets)) << ".\n\n"
     << MarkdownMetricsTable(kKeys, rows);
  if (!seed_table.empty())
    md << "\nOver seeds " << absl::StrJoin(seeded.seeds, ", ")
       << ": mean ± sample standard deviation (n − 1) of each column; the mean row is each seed's mean over the "
          "held-out targets, then mean ± std over seeds.\n\n"
       << seed_table;
  md << "\nThe same checkpoints and scores at oracle thresholds, for comparison with the paper (threshold: "
     << out["reference_mode"]["threshold_mode"].get<std::string>() << "):\n\n"
     << MarkdownMetricsTable(kKeys, reference_rows);
  if (!seed_reference_table.empty()) md << "\nOver seeds, at oracle thresholds:\n\n" << seed_reference_table;
  md << "\nCost: " << trainings << " training run(s) for " << targets << " target(s), " << std::setprecision(4)
     << total_rank_seconds / 3600 << " rank-hours in all (" << total_rank_seconds / 3600 / targets
     << " per target); one training per target would cost " << one_per_target / 3600 << " rank-hours ("
     << std::setprecision(2) << out["cost"]["saving_vs_one_training_per_target"].get<double>() << "x).\n\n"
     << "| job | wall s | ranks | rank-hours | device |\n|---|---|---|---|---|\n"
     << cost_rows.str();
  WriteFileAtomic(files.Table(), md.str());
  WriteReport(run_dir);
  return md.str();
}
}  // namespace instructflip
