#include "trainer/run_files.h"

#include "dataio/base/file_util.h"

namespace instructflip {

std::string TrainRunFiles::Config() const { return JoinPath(dir, "config.yaml"); }
std::string TrainRunFiles::Metrics() const { return JoinPath(dir, "metrics.jsonl"); }
std::string TrainRunFiles::Evaluation() const { return JoinPath(dir, "eval"); }
std::string TrainRunFiles::Report() const { return JoinPath(dir, "report.html"); }

std::string EvalFiles::Scores() const { return JoinPath(dir, "scores.csv"); }
std::string EvalFiles::Metrics() const { return JoinPath(dir, "metrics.json"); }
std::string EvalFiles::Table() const { return JoinPath(dir, "metrics.md"); }
std::string EvalFiles::Roc(const std::string& domain) const { return JoinPath(dir, "roc_" + domain + ".csv"); }
std::string EvalFiles::Explanations() const { return JoinPath(dir, "explanations.jsonl"); }
std::string EvalFiles::ExplanationImage(const std::string& domain, const std::string& stem, const std::string& kind) {
  return "explanations/" + domain + "/" + stem + "_" + kind + ".png";
}

}  // namespace instructflip
