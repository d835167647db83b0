// The training loop on one process with the tiny model: a run cut at step k
// and resumed from its checkpoint ends bit-identical to an uninterrupted run;
// a resume with another global batch is refused; fp16 and bf16 paths train.
#include "trainer/trainer.h"

#include <absl/strings/str_split.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "dist/communicator.h"
#include "model/instructions.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluator.h"
#include "trainer/event_writer.h"
#include "tests/trainer/event_reader.h"
#include "dataio/base/file_util.h"
#include "tests/dataio/test_util.h"
#include "tests/trainer/tiny_training.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;
using testing::ReadScalarEvents;
using testing::ScalarEvent;

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    testutil::SynthesizeTinyStore(dir_->path, 24, 4);
  }
  static void TearDownTestSuite() { delete dir_; }

  static TrainerOptions Options() {
    TrainerOptions o = testutil::TinyTrainerOptions(*dir_ / "store", 4, 2);
    o.loader_threads = 2;
    o.log_every = 1;
    return o;
  }
  // Trains a fresh run in `run_dir` for `steps` steps (checkpoints as `o` says).
  static void TrainSteps(const TrainerOptions& o, Communicator* communicator, const std::string& run_dir,
                         int64_t steps) {
    Trainer trainer(o, communicator, run_dir);
    trainer.Run("", /*stop_after=*/steps);
  }
  static std::vector<torch::Tensor> Snapshot(Trainer& trainer) {
    std::vector<torch::Tensor> out;
    for (const auto& p : trainer.model()->parameters()) out.push_back(p.detach().clone());
    return out;
  }
  static TempDir* dir_;
};
TempDir* TrainerTest::dir_ = nullptr;

TEST_F(TrainerTest, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  Trainer straight(Options(), single.get(), runs / "straight");
  const TrainResult full = straight.Run("");
  EXPECT_EQ(full.steps, 6);
  const auto expected = Snapshot(straight);
  // TensorBoard events: one total-loss scalar per step, the last equal to the result.
  std::vector<ScalarEvent> totals;
  for (const auto& entry : std::filesystem::directory_iterator(runs / "straight"))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      for (const ScalarEvent& e : ReadScalarEvents(entry.path().string()))
        if (e.tag == "loss/total") totals.push_back(e);
  ASSERT_EQ(totals.size(), 6u);
  EXPECT_EQ(totals.back().step, 6);
  EXPECT_FLOAT_EQ(totals.back().value, static_cast<float>(full.last_loss));

  // Cut inside an epoch (step 3) and exactly at its end (step 4: ~38 training
  // samples, global batch 8 -> 4 steps per epoch), where the checkpoint's
  // loader state already names the next epoch.
  for (int cut : {3, 4}) {
    const std::string dir = runs / ("cut" + std::to_string(cut));
    {
      Trainer first(Options(), single.get(), dir);
      EXPECT_EQ(first.Run("", /*stop_after=*/cut).steps, cut);
    }
    Trainer second(Options(), single.get(), dir);
    const TrainResult resumed = second.Run("auto");
    EXPECT_EQ(resumed.steps, 6);
    EXPECT_EQ(resumed.last_loss, full.last_loss) << "cut at step " << cut;
    const auto actual = Snapshot(second);
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i)
      EXPECT_TRUE(torch::equal(actual[i], expected[i])) << "cut at step " << cut << ": parameter " << i;
  }
  // Parameters moved at all (the test would pass trivially otherwise).
  Trainer untouched(Options(), single.get(), runs / "untouched");
  EXPECT_FALSE(torch::equal(Snapshot(untouched)[0], expected[0]));
}

TEST(TensorBoard, EventRecordsRoundTripWithChecksums) {
  TempDir tmp;
  std::string path;
  {
    TensorBoardWriter writer(tmp.path);
    writer.Scalar("loss/total", 3, 1.5f);
    writer.Scalar("optim/lr", 4, 2e-6f);
    path = writer.path();
  }
  const std::vector<ScalarEvent> events = ReadScalarEvents(path);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].tag, "loss/total");
  EXPECT_EQ(events[0].step, 3);
  EXPECT_FLOAT_EQ(events[0].value, 1.5f);
  EXPECT_EQ(events[1].tag, "optim/lr");
  // A flipped byte is detected by the record checksum.
  std::string bytes = ReadFile(path);
  bytes[bytes.size() - 7] ^= 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  EXPECT_THROW(ReadScalarEvents(path), Error);
}

TEST_F(TrainerTest, ResumeWithAnotherGlobalBatchIsRefused) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainSteps(Options(), single.get(), runs.path, 2);
  TrainerOptions other = Options();
  other.accumulation = 3;
  Trainer second(other, single.get(), runs.path);
  const std::string error = ErrorOf([&] { second.Run("auto"); });
  EXPECT_NE(error.find("global batch was 8"), std::string::npos) << error;
}

TEST_F(TrainerTest, EvaluationExplainsSamplesAndReportsBothThresholdModes) {
  torch::manual_seed(3);
  BuiltModel built = BuildModel(testutil::TinyConfig());
  auto single = MakeSingleProcessCommunicator();
  EvalOptions options;
  options.store = *dir_ / "store";
  options.domains = {"synA", "synB"};
  options.split.reset();  // both splits: enough videos of each label
  options.batch_per_rank = 4;
  options.threshold = 0.5;
  options.explain_per_domain = 3;
  const std::string out = *dir_ / "explained";
  EvalOptions twice = options;  // a domain listed twice would weigh twice in the pooled row
  twice.domains = {"synA", "synB", "synA"};
  EXPECT_NE(ErrorOf([&] { Evaluate(built, twice, single.get(), ""); }).find("[synA,synB,synA] name one more than once"),
            std::string::npos);
  const EvalResult r = Evaluate(built, options, single.get(), out);
  ASSERT_EQ(r.domains.size(), 2u);
  ASSERT_EQ(r.own_threshold.size(), 2u);
  int64_t videos = 0;
  for (size_t d = 0; d < 2; ++d) {
    EXPECT_DOUBLE_EQ(r.domains[d].second.threshold, 0.5);
    // The oracle (the reference's mode): each domain at its own EER threshold, same videos and AUC.
    EXPECT_DOUBLE_EQ(r.own_threshold[d].threshold, r.own_threshold[d].eer_threshold);
    EXPECT_EQ(r.own_threshold[d].videos, r.domains[d].second.videos);
    EXPECT_DOUBLE_EQ(r.own_threshold[d].auc, r.domains[d].second.auc);
    videos += r.domains[d].second.videos;
  }
  EXPECT_EQ(r.pooled.videos, videos) << "video ids of different domains must not merge";

  std::ifstream in(out + "/explanations.jsonl");
  std::map<std::string, std::vector<nlohmann::json>> per_domain;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json e = nlohmann::json::parse(line);
    per_domain[e.at("domain").get<std::string>()].push_back(e);
  }
  ASSERT_EQ(per_domain.size(), 2u);
  auto store = Store::Open(*dir_ / "store");
  for (const auto& [domain, records] : per_domain) {
    ASSERT_EQ(records.size(), 3u) << domain;
    std::set<int64_t> labels, video_ids;
    for (const nlohmann::json& e : records) {
      labels.insert(e.at("label").get<int64_t>());
      video_ids.insert(e.at("video_id").get<int64_t>());
      const int64_t index = e.at("sample_index").get<int64_t>();
      EXPECT_EQ(e.at("label").get<int64_t>(), store->table().label[index]);
      EXPECT_EQ(e.at("content_expected").get<std::string>(), ContentInstruction(store->table().spoof_type[index]).answer);
      EXPECT_TRUE(e.at("content_answer").is_string());
      EXPECT_TRUE(e.at("style_answer").is_string());
      for (const char* key : {"image", "cue"}) {
        const std::string png = ReadFile(out + "/" + e.at(key).get<std::string>());
        ASSERT_GT(png.size(), 8u) << key;
        EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << key;
      }
    }
    EXPECT_EQ(labels, (std::set<int64_t>{0, 1})) << domain << ": live and spoof both explained";
    EXPECT_EQ(video_ids.size(), 3u) << domain << ": one frame per video";
  }

  // A failed evaluation (here: no sample of the selected type) leaves an earlier
  // one's files as they were, and makes no directory.
  const std::string scores_before = ReadFile(out + "/scores.csv");
  EvalOptions failing = options;
  failing.spoof_types = {-1};
  EXPECT_THROW(Evaluate(built, failing, single.get(), out), Error);
  EXPECT_EQ(ReadFile(out + "/scores.csv"), scores_before);
  for (const auto& entry : std::filesystem::directory_iterator(out))
    EXPECT_NE(entry.path().filename().string().rfind(".eval-", 0), 0u) << entry.path();
  EXPECT_THROW(Evaluate(built, failing, single.get(), out + "/new/dir"), Error);
  EXPECT_FALSE(std::filesystem::exists(out + "/new"));
  // A later evaluation replaces the earlier one whole: no ROC of a domain it did not score.
  EvalOptions one = options;
  one.domains = {"synB"};
  one.explain_per_domain = 0;
  Evaluate(built, one, single.get(), out);
  EXPECT_FALSE(std::filesystem::exists(out + "/roc_synA.csv"));
  EXPECT_TRUE(std::filesystem::exists(out + "/roc_synB.csv"));
  EXPECT_FALSE(std::filesystem::exists(out + "/explanations.jsonl"));
}

// metrics.jsonl carries TrainStep's per-phase host seconds of every logged step.
TEST_F(TrainerTest, StepPhasesAreTimedAndLogged) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainerOptions o = Options();
  o.total_steps = 3;
  Trainer(o, single.get(), runs.path).Run("");
  int lines = 0;
  for (const nlohmann::json& record : testutil::StepRecords(runs.path)) {
    ++lines;
    const nlohmann::json phases = record.at("phase_s");
    for (const char* phase : {"sample", "inputs", "forward", "backward", "exposed_communication", "update"})
      EXPECT_GE(phases.at(phase).get<double>(), 0.0) << phase;
    EXPECT_GT(phases.at("forward").get<double>(), 0.0);
    EXPECT_GT(phases.at("backward").get<double>(), 0.0);
  }
  EXPECT_EQ(lines, 3);
}

// loss.ssl > 0 end to end: the loader makes the views, the SSL branch trains,
// its InfoNCE is logged per step and the run resumes like any other.
TEST_F(TrainerTest, TheSslBranchTrainsAndIsLogged) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainerOptions o = Options();
  o.total_steps = 3;
  o.model.loss.ssl = 0.1;
  Trainer trainer(o, single.get(), runs.path);
  const auto before = trainer.model()->ssl_branch->parameters()[0].detach().clone();
  trainer.Run("");
  EXPECT_GT((trainer.model()->ssl_branch->parameters()[0] - before).abs().max().item<double>(), 0.0);
  int lines = 0;
  for (const nlohmann::json& record : testutil::StepRecords(runs.path)) {
    ++lines;
    const double ssl = record.at("loss_ssl").get<double>();
    EXPECT_TRUE(std::isfinite(ssl) && ssl > 0) << record;
  }
  EXPECT_EQ(lines, 3);
}

TEST_F(TrainerTest, MixedPrecisionPathsTrain) {
  auto single = MakeSingleProcessCommunicator();
  for (torch::ScalarType precision : {torch::kBFloat16, torch::kFloat16}) {
    TempDir runs;
    TrainerOptions o = Options();
    o.precision = precision;
    if (!compat::AutocastSupported(torch::kCPU, precision)) {
      const std::string error = ErrorOf([&] { Trainer(o, single.get(), runs.path); });
      EXPECT_NE(error.find("precision fp16 is not available on cpu"), std::string::npos) << error;
      continue;
    }
    o.total_steps = 24;  // the 4-sample classification loss falls visibly within 24 steps at lr 3e-3
    o.schedule.max_lr = 3e-3;
    Trainer trainer(o, single.get(), runs.path);
    const TrainResult result = trainer.Run("");
    EXPECT_EQ(result.steps, 24) << precision;
    ASSERT_TRUE(std::isfinite(result.last_loss)) << precision;
    // It learns: the classification loss of the last 4 steps is below that of the first 4.
    const auto [first, last] = testutil::FirstAndLastLoggedMeans(runs.path, "loss_classification", 4);
    std::cout << "[ " << precision << " ] classification loss " << first << " -> " << last << "\n";
    EXPECT_LT(last, first) << precision;
  }
}

// A diverging run (lr 1e10) stops with an error naming the step instead of
// writing NaN checkpoints that eval and lodo would then be fed; the last good
// checkpoint stays the newest.
TEST_F(TrainerTest, DivergenceStopsTrainingNamingTheStep) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainerOptions o = Options();
  o.total_steps = 12;
  o.checkpoint_every = 1;
  o.schedule.max_lr = 1e10;
  Trainer trainer(o, single.get(), runs.path);
  const std::string error = ErrorOf([&] { trainer.Run(""); });
  ASSERT_NE(error.find("training diverged at step "), std::string::npos) << error;
  const int64_t step = std::stoll(error.substr(error.find("at step ") + 8));
  const std::optional<std::string> latest = CheckpointStore(runs.path, o.keep_last).FindLatestComplete();
  if (step > 1) {
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(CheckpointStore::StepOf(*latest), step - 1);  // nothing written for the diverged step
  }
}

// A run killed after its last checkpoint logged steps it will train again:
// TensorBoard shows each step once (the resumed session's start drops the
// stale tail), with the resumed values, and metrics.jsonl marks the session.
TEST_F(TrainerTest, AResumeAfterAKillShowsEachStepOnceInTensorBoard) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainerOptions o = Options();
  o.checkpoint_every = 2;
  o.resolved_config = "total_steps: 6\n";
  Trainer straight(o, single.get(), runs / "straight");
  straight.Run("");
  std::map<int64_t, float> expected;
  for (const auto& entry : std::filesystem::directory_iterator(runs / "straight"))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      for (const ScalarEvent& e : ReadScalarEvents(entry.path().string()))
        if (e.tag == "loss/total") expected[e.step] = e.value;
  ASSERT_EQ(expected.size(), 6u);
  // Killed at step 5: its checkpoint at 5 never completed, steps 5 is in the logs.
  const std::string run = runs / "killed";
  TrainSteps(o, single.get(), run, 5);
  std::filesystem::remove_all(JoinPath(run, "checkpoints/step-00000005"));
  Trainer resumed(o, single.get(), run);
  EXPECT_EQ(resumed.Run("auto").steps, 6);
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(run))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  std::vector<int64_t> steps, session_starts;
  int configs = 0, hparams = 0;
  for (const testing::Event& e : testing::TensorBoardView(files)) {
    if (e.kind == testing::Event::Kind::kScalar && e.tag == "loss/total") {
      steps.push_back(e.step);
      EXPECT_EQ(e.value, expected.at(e.step)) << "step " << e.step;
    }
    if (e.kind == testing::Event::Kind::kSessionStart) session_starts.push_back(e.step);
    if (e.kind == testing::Event::Kind::kText && e.tag == "config") {
      ++configs;
      EXPECT_NE(e.bytes.find("total_steps: 6"), std::string::npos) << e.bytes;
    }
    hparams += e.kind == testing::Event::Kind::kHParams;
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(session_starts, (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(configs, 2);
  EXPECT_EQ(hparams, 2);
  std::vector<std::string> markers;
  for (const absl::string_view line : absl::StrSplit(ReadFile(JoinPath(run, "metrics.jsonl")), '\n', absl::SkipEmpty()))
    if (line.find("session_start") != absl::string_view::npos) markers.push_back(std::string(line.substr(0, 18)));
  EXPECT_EQ(markers, (std::vector<std::string>{"{\"session_start\":1", "{\"session_start\":5"}));
}

// When every checkpoint of a run is damaged, `auto` refuses instead of starting
// over at step 0 (which would prune them).
TEST_F(TrainerTest, EveryCheckpointDamagedIsRefusedNotRestarted) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainerOptions o = Options();
  o.checkpoint_every = 2;
  TrainSteps(o, single.get(), runs.path, 4);
  const CheckpointStore store(runs.path, o.keep_last);
  ASSERT_EQ(store.Checkpoints().size(), 2u);
  for (const std::string& checkpoint : store.Checkpoints()) {
    std::fstream weights(JoinPath(checkpoint, "model.safetensors"), std::ios::in | std::ios::out | std::ios::binary);
    weights.seekp(-5, std::ios::end);
    weights.put('\x7f');
  }
  Trainer again(o, single.get(), runs.path);
  const std::string error = ErrorOf([&] { again.Run("auto"); });
  EXPECT_NE(error.find("every checkpoint in "), std::string::npos) << error;
  EXPECT_NE(error.find("is damaged (2, newest "), std::string::npos) << error;
  EXPECT_EQ(store.Checkpoints().size(), 2u);  // nothing pruned
}

// An optimizer.pt whose checksum matches (written so, or by another program)
// but that LibTorch cannot load, and a COMPLETE whose entry lacks its numbers:
// errors naming the file (exit 2 at the command), not LibTorch's or JSON's.
TEST_F(TrainerTest, MalformedOptimizerStateAndCompleteMarkerAreNamed) {
  auto single = MakeSingleProcessCommunicator();
  TempDir runs;
  TrainerOptions o = Options();
  o.checkpoint_every = 2;
  TrainSteps(o, single.get(), runs.path, 2);
  const std::string checkpoint = CheckpointStore(runs.path, o.keep_last).Checkpoints().back();
  const std::string optimizer = JoinPath(checkpoint, "optimizer.pt");
  WriteFileAtomic(optimizer, "not a torch archive");
  nlohmann::json complete = nlohmann::json::parse(ReadFile(JoinPath(checkpoint, "COMPLETE")));
  complete["files"]["optimizer.pt"] = {{"bytes", FileSize(optimizer)}, {"crc32c", FileCrc32c(optimizer)}};
  WriteFileAtomic(JoinPath(checkpoint, "COMPLETE"), complete.dump());
  Trainer resumed(o, single.get(), runs.path);
  std::string error = ErrorOf([&] { resumed.Run(checkpoint); });
  EXPECT_NE(error.find("optimizer.pt: not an optimizer state this model can load"), std::string::npos) << error;

  complete["files"]["optimizer.pt"] = {{"bytes", "many"}};
  WriteFileAtomic(JoinPath(checkpoint, "COMPLETE"), complete.dump());
  error = ErrorOf([&] { CheckpointStore::Verify(checkpoint); });
  EXPECT_NE(error.find("COMPLETE: entry 'optimizer.pt' needs a byte count and a CRC32C"), std::string::npos) << error;
}

}  // namespace
}  // namespace instructflip
