// The scoring input builder cannot see a label: its signature and its input
// type are pinned here at compile time, and its questions are checked to be a
// function of the sample key alone.
#include "model/scoring.h"

#include <gtest/gtest.h>

#include <set>
#include <type_traits>

#include "dataio/base/check.h"
#include "tests/model/tiny_model.h"

namespace instructflip {
namespace {

// Detects a member by name (the detection idiom), one detector per field that
// carries a label or is derived from one (InstructFlipTargets' and the
// loader Batch's annotated fields).
#define DEFINE_HAS_MEMBER(field)                                                         \
  template <typename T, typename = void>                                                 \
  struct Has_##field : std::false_type {};                                              \
  template <typename T>                                                                  \
  struct Has_##field<T, std::void_t<decltype(std::declval<T>().field)>> : std::true_type {};
DEFINE_HAS_MEMBER(label)
DEFINE_HAS_MEMBER(spoof_type)
DEFINE_HAS_MEMBER(illumination)
DEFINE_HAS_MEMBER(environment)
DEFINE_HAS_MEMBER(camera_quality)
DEFINE_HAS_MEMBER(content_answer_t5)
DEFINE_HAS_MEMBER(style_answer_t5)
DEFINE_HAS_MEMBER(content_class)
DEFINE_HAS_MEMBER(style_class)
DEFINE_HAS_MEMBER(video_id)
#undef DEFINE_HAS_MEMBER

template <typename T>
constexpr bool HasAnyLabelField() {
  return Has_label<T>::value || Has_spoof_type<T>::value || Has_illumination<T>::value ||
         Has_environment<T>::value || Has_camera_quality<T>::value || Has_content_answer_t5<T>::value ||
         Has_style_answer_t5<T>::value || Has_content_class<T>::value || Has_style_class<T>::value ||
         Has_video_id<T>::value;
}

static_assert(Has_label<InstructFlipTargets>::value && Has_style_class<InstructFlipTargets>::value &&
                  Has_spoof_type<SampleTexts>::value,
              "the detectors find the fields where they are");
static_assert(!HasAnyLabelField<UnlabeledBatch>(), "scoring's input has no label-derived field");
static_assert(!HasAnyLabelField<InstructFlipInputs>(), "the model's inputs have no label-derived field");
static_assert(!HasAnyLabelField<ScoringPass>());

// UnlabeledBatch is exactly {images, keys}: a field added to it (an attribute,
// a mask) breaks this structured binding and the size check.
static_assert(sizeof(UnlabeledBatch) == 2 * sizeof(torch::Tensor));
[[maybe_unused]] void UnlabeledBatchHasTwoFields() {
  auto [images, keys] = UnlabeledBatch{};
  (void)images;
  (void)keys;
}

// The builder and the scorer take the unlabeled batch, a rule and the batcher;
// nothing else can carry a label in.
static_assert(std::is_same_v<decltype(&MakeScoringInputs),
                             std::vector<ScoringPass> (*)(const UnlabeledBatch&, ScoringStyleQuestion,
                                                          InstructionBatcher&)>);
static_assert(std::is_same_v<decltype(&ScoreBatch),
                             ScoredBatch (*)(InstructFlipImpl&, const UnlabeledBatch&, ScoringStyleQuestion,
                                             InstructionBatcher&, const torch::Device&)>);

TEST(Scoring, QuestionsFollowTheRuleAndTheKeyOnly) {
  const ModelConfig config = testutil::TinyConfig();
  InstructionBatcher batcher = testutil::MakeTinyBatcher(config);
  const int64_t B = 64;
  const UnlabeledBatch batch{torch::zeros({B, 3, 32, 32}), torch::arange(B) * 7 + 3};

  const std::vector<ScoringPass> uniform = MakeScoringInputs(batch, ScoringStyleQuestion::kUniform, batcher);
  ASSERT_EQ(uniform.size(), 1u);
  std::set<StyleQuestion> seen;
  for (int64_t i = 0; i < B; ++i) {
    EXPECT_EQ(uniform[0].style[i], batcher.UniformQuestion(7 * i + 3));
    seen.insert(uniform[0].style[i]);
  }
  EXPECT_EQ(seen.size(), 3u) << "64 keys draw every question";
  EXPECT_TRUE(uniform[0].inputs.images.is_same(batch.images));
  // The inputs are the batcher's questions for exactly those choices.
  const InstructFlipInputs expected = batcher.Questions(uniform[0].style);
  EXPECT_TRUE(torch::equal(uniform[0].inputs.style_question_qformer.ids, expected.style_question_qformer.ids));
  EXPECT_TRUE(torch::equal(uniform[0].inputs.style_question_t5.ids, expected.style_question_t5.ids));
  EXPECT_FALSE(uniform[0].inputs.cue_noise.defined());

  const std::vector<ScoringPass> ensemble = MakeScoringInputs(batch, ScoringStyleQuestion::kEnsemble, batcher);
  ASSERT_EQ(ensemble.size(), 3u);
  const StyleQuestion order[] = {StyleQuestion::kIllumination, StyleQuestion::kEnvironment,
                                 StyleQuestion::kCameraQuality};
  for (int k = 0; k < 3; ++k)
    EXPECT_EQ(ensemble[k].style, std::vector<StyleQuestion>(B, order[k])) << "pass " << k;

  const std::vector<ScoringPass> fixed = MakeScoringInputs(batch, ScoringStyleQuestion::kEnvironment, batcher);
  ASSERT_EQ(fixed.size(), 1u);
  EXPECT_EQ(fixed[0].style, std::vector<StyleQuestion>(B, StyleQuestion::kEnvironment));
  EXPECT_THROW(MakeScoringInputs({batch.images, torch::arange(3)}, ScoringStyleQuestion::kUniform, batcher), Error);
}

}  // namespace
}  // namespace instructflip
