// instructflip metrics: FAS metrics of any model's scores from a CSV
// (launch/scores_csv.h).
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "launch/commands.h"
#include "launch/flags.h"
#include "launch/scores_csv.h"
#include "trainer/metrics.h"

namespace instructflip::launch {
namespace {

int RunMetrics(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "metrics takes no positional arguments");
  const std::optional<double> threshold = ThresholdFlag(kWithoutThresholdEer);
  std::vector<std::pair<std::string, DomainMetrics>> results;
  std::vector<DomainMetrics> all;
  for (const auto& [domain, samples] : ReadScoresCsv(FLAGS_scores)) {
    results.push_back({domain, ComputeMetrics(samples, threshold)});
    all.push_back(results.back().second);
  }
  const DomainMetrics mean = MeanMetrics(all);
  if (FLAGS_json) {
    nlohmann::json out;
    for (const auto& [domain, m] : results) out["domains"][domain] = MetricsToJson(m);
    out["mean"] = MetricsToJson(mean);
    out["threshold_mode"] = threshold ? "given" : kOracleThresholdMode;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "Threshold: " << (threshold ? "given (" + std::to_string(*threshold) + ")" :
                                             std::string(kOracleThresholdMode))
            << "\n\n";
  std::vector<MetricsTableRow> rows;
  for (const auto& [domain, m] : results) rows.push_back({{domain}, m});
  rows.push_back({{"**mean**"}, mean});
  std::cout << MarkdownMetricsTable({"domain"}, rows);
  return 0;
}

}  // namespace

std::vector<Command> MetricsCommands() {
  return {{"metrics", "", "FAS metrics (AUC, EER, HTER, ACC, TPR@FPR=1%, APCER/BPCER/ACER) of scores from any model",
           {Required("scores", "FILE.csv", "scores with header score,label,video_id[,domain]"),
            Optional("threshold", "T", "decision threshold in [0, 1] for HTER/ACC")
                .Absent("each domain's own EER threshold, an oracle"),
            Switch("json", "print JSON")},
           false, "", RunMetrics}};
}

}  // namespace instructflip::launch
