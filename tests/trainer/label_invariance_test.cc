// The measurement's honesty, proven by invariance: one checkpoint evaluated on
// stores that differ only in their annotations (labels flipped; labels and
// every attribute permuted over videos) gives bit-identical per-sample scores,
// for every variant, under every scoring rule. If anything derived from a
// label reached the model's input (a question, a mask, a draw, noise), the
// scores would move with it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dataio/jpeg_codec.h"
#include "dataio/store_writer.h"
#include "dist/communicator.h"
#include "model/build.h"
#include "model/weights.h"
#include "tests/dataio/test_util.h"
#include "tests/model/tiny_model.h"
#include "trainer/evaluator.h"

namespace instructflip {
namespace {

using testing::TempDir;

struct Annotation {
  int8_t label, spoof_type, illumination, environment, camera_quality;
};

// Two domains of 12 videos x 2 frames, 32 px, every attribute known. Each
// video's annotation is annotations[video] (same for its frames); the pixels
// depend on the sample's position only, so stores differ in annotations alone.
void WriteStore(const std::string& dir, const std::vector<Annotation>& annotations) {
  StoreWriterOptions options;
  options.dir = dir;
  options.image_size = 32;
  StoreWriter writer(options);
  int64_t sample = 0;
  size_t video = 0;
  for (const char* name : {"synA", "synB"}) {
    const int d = writer.AddDomain(name);
    for (int v = 0; v < 12; ++v, ++video)
      for (int frame = 0; frame < 2; ++frame, ++sample) {
        const Annotation& a = annotations[video];
        SampleAttributes s;
        s.label = a.label;
        s.spoof_type = a.spoof_type;
        s.illumination = a.illumination;
        s.environment = a.environment;
        s.camera_quality = a.camera_quality;
        s.video_id = v;
        s.split = Split::kTest;
        s.source = std::string(name) + "/" + std::to_string(sample) + ".jpg";
        RgbImage image = testing::TaggedImage(sample * 37 + 11, 32);
        for (size_t i = 0; i < image.pixels.size(); ++i)  // texture, so images differ beyond their colour
          image.pixels[i] = static_cast<uint8_t>(image.pixels[i] ^ ((i * 2654435761u + sample) >> 7 & 0x3f));
        writer.Add(d, EncodeJpeg(image, 95), s);
      }
  }
  writer.Commit();
}

std::vector<Annotation> TrueAnnotations() {
  std::vector<Annotation> out;
  for (int v = 0; v < 24; ++v) {
    const int8_t label = static_cast<int8_t>(v % 2);
    out.push_back({label, static_cast<int8_t>(label ? 1 + v % 10 : 0), static_cast<int8_t>(v % 4),
                   static_cast<int8_t>(v / 4 % 2), static_cast<int8_t>(v / 2 % 3)});
  }
  return out;
}

class LabelInvariance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::vector<Annotation> truth = TrueAnnotations();
    std::vector<Annotation> flipped = truth;
    for (size_t v = 0; v < flipped.size(); ++v) {  // the spoof type follows the label (the store checks it)
      flipped[v].label = static_cast<int8_t>(1 - flipped[v].label);
      flipped[v].spoof_type = static_cast<int8_t>(flipped[v].label ? 1 + (v + 3) % 10 : 0);
    }
    std::vector<size_t> order(truth.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    std::vector<Annotation> permuted;
    for (size_t v : order) permuted.push_back(truth[v]);
    WriteStore(*dir_ / "true", truth);
    WriteStore(*dir_ / "flipped", flipped);
    WriteStore(*dir_ / "permuted", permuted);
  }
  static void TearDownTestSuite() { delete dir_; }

  // Per-sample scores (store order) and labels of `store` under `rule`.
  static EvalResult Scores(BuiltModel& built, const std::string& store, ScoringStyleQuestion rule) {
    auto single = MakeSingleProcessCommunicator();
    EvalOptions options;
    options.store = *dir_ / store;
    options.domains = {"synA", "synB"};
    options.batch_per_rank = 5;  // batches mix lives and spoofs, and the tail is padded
    options.style_question = rule;
    return Evaluate(built, options, single.get(), "");
  }
  static TempDir* dir_;
};
TempDir* LabelInvariance::dir_ = nullptr;

// A checkpoint of `variant` written to disk and loaded into a fresh model.
BuiltModel LoadedCheckpoint(Variant variant, const std::string& path) {
  ModelConfig config = testutil::TinyConfig(variant);
  torch::manual_seed(17);
  BuiltModel trained = BuildModel(config);
  SaveModelWeights(*trained.model, path, {});
  torch::manual_seed(99);  // other random weights, replaced by the checkpoint's
  BuiltModel loaded = BuildModel(config);
  LoadModelWeights(*loaded.model, path);
  return loaded;
}

TEST_F(LabelInvariance, ScoresDoNotMoveWithLabelsInAnyVariantOrRule) {
  for (const char* name : {"full", "no_llm", "ve_cb", "ve_cb_sb", "mc"}) {
    SCOPED_TRACE(name);
    BuiltModel built = LoadedCheckpoint(kVariants.Parse(name, "variant"), *dir_ / (std::string(name) + ".safetensors"));
    for (ScoringStyleQuestion rule : {ScoringStyleQuestion::kUniform, ScoringStyleQuestion::kEnsemble,
                                      ScoringStyleQuestion::kCameraQuality}) {
      SCOPED_TRACE(kScoringStyleQuestions.Name(rule));
      const EvalResult truth = Scores(built, "true", rule);
      ASSERT_EQ(truth.scores.size(), 48u);
      for (const char* other : {"flipped", "permuted"}) {
        SCOPED_TRACE(other);
        const EvalResult changed = Scores(built, other, rule);
        ASSERT_EQ(changed.scores.size(), truth.scores.size());
        int labels_changed = 0;
        for (size_t i = 0; i < truth.scores.size(); ++i) {
          labels_changed += changed.scores[i].label != truth.scores[i].label;
          // Bit-identical, not close: the same computation on the same inputs.
          EXPECT_EQ(changed.scores[i].score, truth.scores[i].score) << "sample " << i;
        }
        EXPECT_GT(labels_changed, 0) << "the stores must differ in their labels";
      }
    }
  }
}

// The invariance above is not vacuous: the models read their style question,
// so a label-chosen question would have moved the scores. (no_llm and mc read
// empty prompts, as the reference's classifier ablations.)
TEST_F(LabelInvariance, TheStyleQuestionChangesTheScores) {
  for (const char* name : {"full", "ve_cb_sb"}) {
    SCOPED_TRACE(name);
    BuiltModel built = LoadedCheckpoint(kVariants.Parse(name, "variant"), *dir_ / (std::string(name) + ".q.safetensors"));
    const EvalResult camera = Scores(built, "true", ScoringStyleQuestion::kCameraQuality);
    const EvalResult illumination = Scores(built, "true", ScoringStyleQuestion::kIllumination);
    double largest = 0;
    for (size_t i = 0; i < camera.scores.size(); ++i)
      largest = std::max(largest, std::abs(camera.scores[i].score - illumination.scores[i].score));
    EXPECT_GT(largest, 1e-6);
  }
}

// The ensemble's score is the mean of the three fixed questions' scores.
TEST_F(LabelInvariance, EnsembleAveragesTheThreeQuestions) {
  BuiltModel built = LoadedCheckpoint(Variant::kFull, *dir_ / "ensemble.safetensors");
  const EvalResult ensemble = Scores(built, "true", ScoringStyleQuestion::kEnsemble);
  std::vector<EvalResult> single;
  for (ScoringStyleQuestion q : {ScoringStyleQuestion::kIllumination, ScoringStyleQuestion::kEnvironment,
                                 ScoringStyleQuestion::kCameraQuality})
    single.push_back(Scores(built, "true", q));
  for (size_t i = 0; i < ensemble.scores.size(); ++i) {
    const double mean = (single[0].scores[i].score + single[1].scores[i].score + single[2].scores[i].score) / 3;
    EXPECT_NEAR(ensemble.scores[i].score, mean, 1e-6) << "sample " << i;
  }
}

}  // namespace
}  // namespace instructflip
