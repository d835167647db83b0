// `instructflip metrics`' input (launch/scores_csv.h), then the metrics of what
// was accepted: any text is refused with instructflip::Error or gives metrics
// in their ranges (or null for a one-class domain), without hanging.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dataio/base/check.h"
#include "launch/scores_csv.h"
#include "tests/fuzz/fuzz_support.h"
#include "trainer/metrics.h"

namespace {

// Metrics are in percent.
bool InRangeOrNull(double v) { return std::isnan(v) || (v >= 0 && v <= 100); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  std::vector<std::pair<std::string, std::vector<ScoredSample>>> domains;
  try {
    domains = launch::ParseScoresCsv(std::string(reinterpret_cast<const char*>(data), size), "scores.csv");
  } catch (const Error&) {
    return 0;
  }
  std::vector<DomainMetrics> all;
  try {  // a video listed as both live and spoof is refused here, naming it
  for (const auto& [name, samples] : domains) {
    if (samples.empty()) fuzz::Broken("a domain without samples");
    for (const std::optional<double> threshold : {std::optional<double>(), std::optional<double>(0.5)}) {
      const DomainMetrics m = ComputeMetrics(samples, threshold);
      for (const double v : {m.auc, m.eer, m.hter, m.acc, m.tpr_at_fpr_1pct, m.apcer, m.bpcer, m.acer})
        if (!InRangeOrNull(v)) fuzz::Broken(("a metric outside [0, 100]: " + std::to_string(v)).c_str());
      all.push_back(m);
    }
  }
  } catch (const Error&) {
    return 0;
  }
  const DomainMetrics mean = MeanMetrics(all);
  if (!InRangeOrNull(mean.auc) || !InRangeOrNull(mean.hter)) fuzz::Broken("a mean outside [0, 100]");
  return 0;
}
