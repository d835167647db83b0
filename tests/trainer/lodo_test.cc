// LODO aggregation and cost model on hand-written job results: the table's
// rows and means, the oracle table beside it, the cost arithmetic, and the
// refusal to aggregate an unfinished run.
#include "trainer/lodo.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "tests/common/test_util.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;

nlohmann::json Metrics(double hter, double auc, int videos) {
  return {{"videos", videos}, {"auc", auc},   {"eer", hter},  {"hter", hter}, {"acc", 100 - hter},
          {"tpr_at_fpr_1pct", 50.0}, {"threshold", 0.5}, {"apcer", 0.0}, {"bpcer", 0.0}, {"acer", 0.0}};
}

void WriteJob(const LodoRunFiles& files, const LodoJob& job, const std::vector<double>& hters,
              double train_wall_s, double eval_wall_s) {
  nlohmann::json result{{"job", job.name}, {"style_question", "uniform"}, {"training_style_question", "label_blind"}};
  for (size_t t = 0; t < job.test.size(); ++t) {
    result["domains"][job.test[t]] = Metrics(hters[t], 90.0, 10);
    result["reference_mode"][job.test[t]] = Metrics(hters[t] / 2, 90.0, 10);
  }
  std::filesystem::create_directories(files.Job(job.name));
  RecordCost(files.Cost(job.name), "train", train_wall_s, 2);
  RecordCost(files.Cost(job.name), "eval", eval_wall_s, 2);
  WriteFileAtomic(files.Result(job.name), result.dump());
}

TEST(Lodo, AggregatesRowsMeansAndCost) {
  TempDir dir;
  LodoProtocol p;
  p.name = "unit";
  p.ranks = 2;
  p.jobs = {{"A_to_BC", {"A"}, {"B", "C"}}, {"BC_to_A", {"B", "C"}, {"A"}}};
  const LodoRunFiles files{dir.path};
  WriteJob(files, p.jobs[0], {10, 20}, 1800, 180);  // one training, two targets
  const std::string unfinished = ErrorOf([&] { AggregateLodo(dir.path, p); });
  EXPECT_NE(unfinished.find("unfinished jobs BC_to_A"), std::string::npos) << unfinished;
  WriteJob(files, p.jobs[1], {30}, 1800, 180);

  const std::string md = AggregateLodo(dir.path, p);
  const nlohmann::json t = nlohmann::json::parse(ReadFile(files.Json()));
  ASSERT_EQ(t["rows"].size(), 3u);
  EXPECT_EQ(t["rows"][1]["target"], "C");
  EXPECT_EQ(t["rows"][2]["job"], "BC_to_A");
  EXPECT_DOUBLE_EQ(t["mean"]["hter"].get<double>(), 20.0);                     // (10 + 20 + 30) / 3
  EXPECT_DOUBLE_EQ(t["reference_mode"]["mean"]["hter"].get<double>(), 10.0);  // the oracle table
  EXPECT_EQ(t["style_question"], "uniform");
  // Cost: 2 jobs x (1800 + 180) s x 2 ranks = 7920 rank-seconds for 3 targets.
  const nlohmann::json& c = t["cost"];
  EXPECT_NEAR(c["total_rank_hours"].get<double>(), 7920.0 / 3600, 1e-12);
  EXPECT_EQ(c["trainings"], 2);
  EXPECT_EQ(c["targets"], 3);
  // One training per target: the mean training (7200 / 2 rank-seconds) three
  // times, plus the same evaluation (720 rank-seconds): 11520 rank-seconds.
  EXPECT_NEAR(c["one_training_per_target_rank_hours"].get<double>(), 11520.0 / 3600, 1e-12);
  EXPECT_NEAR(c["saving_vs_one_training_per_target"].get<double>(), 11520.0 / 7920, 1e-12);
  EXPECT_NE(md.find("| **mean** |"), std::string::npos);
  EXPECT_NE(md.find("oracle"), std::string::npos);
  EXPECT_NE(md.find("uniform (never from the label)"), std::string::npos);
  EXPECT_TRUE(PathExists(files.Report()));
}

// The CA -> MCIO shape: CelebA-Spoof's own test rows scored beside the held-out
// targets are a seen domain: listed and marked, never in the held-out mean.
TEST(Lodo, ASeenDomainTargetIsListedButLeftOutOfTheMean) {
  TempDir dir;
  LodoProtocol p;
  p.name = "unit";
  p.targets_split.reset();
  p.target_subsets["A"] = {Split::kTest, 9600};
  p.jobs = {{"A_to_BC", {"A"}, {"B", "C", "A"}}};
  const LodoRunFiles files{dir.path};
  WriteJob(files, p.jobs[0], {10, 20, 1}, 100, 10);
  const std::string md = AggregateLodo(dir.path, p);
  const nlohmann::json t = nlohmann::json::parse(ReadFile(files.Json()));
  ASSERT_EQ(t["rows"].size(), 3u);
  EXPECT_EQ(t["rows"][2]["seen_domain"], true);
  EXPECT_EQ(t["rows"][0]["seen_domain"], false);
  EXPECT_DOUBLE_EQ(t["mean"]["hter"].get<double>(), 15.0);  // B and C only
  EXPECT_DOUBLE_EQ(t["reference_mode"]["mean"]["hter"].get<double>(), 7.5);
  EXPECT_EQ(t["cost"]["targets"], 2);
  EXPECT_EQ(t["target_subsets"], "A: the first 9600 samples of its test split");
  EXPECT_NE(md.find("| A (seen domain, not in the mean) |"), std::string::npos) << md;
  EXPECT_NE(md.find("except A: the first 9600 samples of its test split"), std::string::npos) << md;
}

// Jobs planned with seeds: besides the per-seed rows, mean ± sample std over
// seeds per (job, target), and of each seed's held-out mean.
TEST(Lodo, SeedsGiveMeanAndStdPerColumn) {
  TempDir dir;
  LodoProtocol p;
  p.name = "unit";
  p.jobs = {{"A_to_BC", {"A"}, {"B", "C"}}};
  p.seeds = {2, 3, 4};
  ExpandSeeds(&p);
  ASSERT_EQ(p.jobs.size(), 3u);
  const LodoRunFiles files{dir.path};
  WriteJob(files, p.jobs[0], {10, 20}, 10, 1);
  WriteJob(files, p.jobs[1], {12, 24}, 10, 1);
  WriteJob(files, p.jobs[2], {14, 28}, 10, 1);
  const std::string md = AggregateLodo(dir.path, p);
  const nlohmann::json t = nlohmann::json::parse(ReadFile(files.Json()));
  EXPECT_EQ(t["rows"].size(), 6u);
  const nlohmann::json& s = t["over_seeds"];
  EXPECT_EQ(s["seeds"], (std::vector<uint64_t>{2, 3, 4}));
  ASSERT_EQ(s["rows"].size(), 2u);
  EXPECT_EQ(s["rows"][1]["job"], "A_to_BC");
  EXPECT_EQ(s["rows"][1]["target"], "C");
  EXPECT_DOUBLE_EQ(s["rows"][1]["hter"]["mean"].get<double>(), 24.0);
  EXPECT_DOUBLE_EQ(s["rows"][1]["hter"]["std"].get<double>(), 4.0);  // sample std of 20, 24, 28
  EXPECT_DOUBLE_EQ(s["mean"]["hter"]["mean"].get<double>(), 18.0);   // seed means 15, 18, 21
  EXPECT_DOUBLE_EQ(s["mean"]["hter"]["std"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(t["reference_mode"]["over_seeds"]["mean"]["hter"]["mean"].get<double>(), 9.0);
  EXPECT_NE(md.find("| A_to_BC | C | 24.00 ± 4.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **mean** | | 18.00 ± 3.00 |"), std::string::npos) << md;
  // Without seeds there is no such table.
  LodoProtocol plain = p;
  plain.jobs = {{"A_to_BC_seed2", {"A"}, {"B", "C"}}};
  AggregateLodo(dir.path, plain);
  EXPECT_FALSE(nlohmann::json::parse(ReadFile(files.Json())).contains("over_seeds"));
  p.seeds = {5};
  EXPECT_NE(ErrorOf([&] { ExpandSeeds(&p); }).find("seeds cannot be planned twice"), std::string::npos);
}

// Checkpoint selection over evaluated steps: final takes the last, source
// validation the lowest validation EER, target_oracle the lowest oracle-mode
// mean HTER of the held-out targets (a seen target does not count).
TEST(Lodo, SelectionPicksByItsOwnRule) {
  const LodoJob job{"A_to_BC", {"A"}, {"B", "C", "A"}};
  auto step = [](int64_t s, double validation_eer, double b, double c, double seen) {
    nlohmann::json e{{"step", s}, {"validation", {{"eer", validation_eer}}}};
    e["reference_mode"]["B"]["hter"] = b;
    e["reference_mode"]["C"]["hter"] = c;
    e["reference_mode"]["A"]["hter"] = seen;
    e["domains"] = e["reference_mode"];
    return e;
  };
  const std::vector<nlohmann::json> evaluated = {step(2, 9, 30, 30, 0), step(4, 5, 20, 40, 50), step(6, 7, 10, 20, 90)};
  EXPECT_EQ(SelectEvaluation(evaluated, CheckpointSelection::kFinal, job), 2u);
  EXPECT_EQ(SelectEvaluation(evaluated, CheckpointSelection::kSourceValidation, job), 1u);
  EXPECT_EQ(SelectEvaluation(evaluated, CheckpointSelection::kTargetOracle, job), 2u);
  EXPECT_DOUBLE_EQ(MeanTargetHter(evaluated[1], "reference_mode", job).get<double>(), 30.0);
  // Equal values: the earliest; no value to compare: the last.
  const std::vector<nlohmann::json> equal = {step(2, 5, 20, 20, 0), step(4, 5, 20, 20, 0)};
  EXPECT_EQ(SelectEvaluation(equal, CheckpointSelection::kSourceValidation, job), 0u);
  const std::vector<nlohmann::json> none = {nlohmann::json{{"step", 2}}, nlohmann::json{{"step", 4}}};
  EXPECT_EQ(SelectEvaluation(none, CheckpointSelection::kTargetOracle, job), 1u);
  EXPECT_EQ(EvaluationSteps(10, 4), (std::vector<int64_t>{4, 8, 10}));
  EXPECT_EQ(EvaluationSteps(8, 4), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(EvaluationSteps(8, 0), (std::vector<int64_t>{8}));
  EXPECT_EQ(DescribeCheckpointSelection(CheckpointSelection::kTargetOracle, 4).rfind("ORACLE: ", 0), 0u);
  EXPECT_EQ(kCheckpointSelections.Find("source_validation"), CheckpointSelection::kSourceValidation);
  EXPECT_FALSE(kCheckpointSelections.Find("best").has_value());
}

TEST(Lodo, RunFilesNameEveryFileUnderTheRunDirectory) {
  const LodoRunFiles files{"/r"};
  const LodoJob job{"J", {"A"}, {"B"}};
  EXPECT_EQ(files.Protocol(), "/r/protocol.yaml");
  EXPECT_EQ(files.Job(job.name), "/r/jobs/J");
  EXPECT_EQ(files.Result(job.name), "/r/jobs/J/result.json");
  EXPECT_EQ(files.Evaluation(job.name), "/r/jobs/J/eval");
  EXPECT_EQ(files.Cache(), "/r/cache");
  // A file named after outside data (a domain) cannot leave its directory.
  EXPECT_EQ(EvalFiles{"/e"}.Roc("casia"), "/e/roc_casia.csv");
  EXPECT_THROW(EvalFiles{"/e"}.Roc("x/../../../etc/y"), Error);
  EXPECT_THROW(JoinUnder("/e", "explanations/../../y"), Error);
  EXPECT_THROW(JoinUnder("/e", "/abs"), Error);
  EXPECT_EQ(JoinUnder("/e", "explanations/casia/000_image.png"), "/e/explanations/casia/000_image.png");
}

}  // namespace
}  // namespace instructflip
