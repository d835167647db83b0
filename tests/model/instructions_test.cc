#include "model/instructions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/schema.h"

namespace instructflip {
namespace {

// Copied from the reference (src/dataset/instruct/_ca_instruction.py), as
// Python evaluates "<prefix><question>\n" + " ".join(options).
constexpr char kSpoofQuestion[] =
    "Choose the correct option to the following question: Which type of spoof type is in this "
    "image?\n(1) Real face (2) Photo (3) Poster (4) A4-paper (5) 2D face mask (6) 2D upper-body "
    "mask (7) 2D region mask (8) PC screen (9) Pad screen (10) Phone screen (11) 3D mask";
constexpr char kIlluminationQuestion[] =
    "Choose the correct option to the following question: What is the illumination condition in "
    "this image?\n(1) Normal (2) Strong (3) Back (4) Dark";
constexpr char kEnvironmentQuestion[] =
    "Choose the correct option to the following question: What is the environment in this "
    "image?\n(1) Indoor (2) Outdoor";
constexpr char kCameraQualityQuestion[] =
    "Choose the correct option to the following question: What is the camera quality in this "
    "image?\n(1) Low (2) Medium (3) High";

TEST(Instructions, ContentQuestionAndAnswersMatchReference) {
  // Indexed like schema.h's kSpoofTypeNames (CelebA-Spoof order).
  const std::vector<std::string> expected = {
      "(1) Real face",      "(2) Photo",        "(3) Poster",
      "(4) A4-paper",       "(5) 2D face mask", "(6) 2D upper-body mask",
      "(7) 2D region mask", "(8) PC screen",    "(9) Pad screen",
      "(10) Phone screen",  "(11) 3D mask"};
  ASSERT_EQ(expected.size(), kSpoofTypeNames.size());
  for (int type = 0; type < static_cast<int>(expected.size()); ++type) {
    const Instruction ins = ContentInstruction(type);
    EXPECT_EQ(ins.question, kSpoofQuestion);
    EXPECT_EQ(ins.answer, expected[type]) << kSpoofTypeNames[type];
    EXPECT_TRUE(ins.answer_known);
  }
  // A spoof of unknown type (datasets without the annotation): "No GT", not trained on.
  const Instruction unknown = ContentInstruction(-1);
  EXPECT_EQ(unknown.question, kSpoofQuestion);
  EXPECT_EQ(unknown.answer, "No GT");
  EXPECT_FALSE(unknown.answer_known);
  EXPECT_THROW(ContentInstruction(-2), Error);
  EXPECT_THROW(ContentInstruction(11), Error);
}

TEST(Instructions, StyleQuestionsAndAnswersMatchReference) {
  const char* const illumination[] = {"(1) Normal", "(2) Strong", "(3) Back", "(4) Dark"};
  for (int v = 0; v < 4; ++v) {
    const Instruction ins = StyleInstruction(StyleQuestion::kIllumination, v, 1, 0);
    EXPECT_EQ(ins.question, kIlluminationQuestion);
    EXPECT_EQ(ins.answer, illumination[v]);
    EXPECT_TRUE(ins.answer_known);
  }
  const char* const environment[] = {"(1) Indoor", "(2) Outdoor"};
  for (int v = 0; v < 2; ++v) {
    const Instruction ins = StyleInstruction(StyleQuestion::kEnvironment, 3, v, 2);
    EXPECT_EQ(ins.question, kEnvironmentQuestion);
    EXPECT_EQ(ins.answer, environment[v]);
  }
  const char* const camera[] = {"(1) Low", "(2) Medium", "(3) High"};
  for (int v = 0; v < 3; ++v) {
    const Instruction ins = StyleInstruction(StyleQuestion::kCameraQuality, 0, 0, v);
    EXPECT_EQ(ins.question, kCameraQualityQuestion);
    EXPECT_EQ(ins.answer, camera[v]);
  }
}

TEST(Instructions, UnknownStyleAttributeAnswersNoGT) {
  const Instruction unknown = StyleInstruction(StyleQuestion::kIllumination, -1, 1, 2);
  EXPECT_EQ(unknown.question, kIlluminationQuestion);
  EXPECT_EQ(unknown.answer, "No GT");
  EXPECT_FALSE(unknown.answer_known);
  // Only the asked attribute matters for the answer.
  EXPECT_EQ(StyleInstruction(StyleQuestion::kEnvironment, -1, 1, -1).answer, "(2) Outdoor");
  EXPECT_FALSE(StyleInstruction(StyleQuestion::kCameraQuality, -1, -1, -1).answer_known);
  // Out-of-range codes are bad input even when another question is asked.
  EXPECT_THROW(StyleInstruction(StyleQuestion::kCameraQuality, 4, 0, 0), Error);
  EXPECT_THROW(StyleInstruction(StyleQuestion::kIllumination, 0, 2, 0), Error);
  EXPECT_THROW(StyleInstruction(StyleQuestion::kIllumination, 0, 0, -2), Error);
}

TEST(Instructions, PickStyleQuestionFollowsReferenceRule) {
  std::map<StyleQuestion, int> counts;
  for (uint64_t key = 0; key < 3000; ++key) {
    EXPECT_EQ(PickStyleQuestion(StyleQuestionRule::kReference, 0, key), StyleQuestion::kCameraQuality);
    const StyleQuestion q = PickStyleQuestion(StyleQuestionRule::kReference, 1, key);
    EXPECT_EQ(PickStyleQuestion(StyleQuestionRule::kReference, 1, key), q);  // a pure function of the key
    EXPECT_EQ(q, UniformStyleQuestion(key));
    ++counts[q];
  }
  ASSERT_EQ(counts.size(), 3u);
  // Binomial(3000, 1/3): sd ~ 26, so +-100 is ~4 sd.
  for (const auto& [q, n] : counts) EXPECT_NEAR(n, 1000, 100) << static_cast<int>(q);
  EXPECT_THROW(PickStyleQuestion(StyleQuestionRule::kReference, 2, 0), Error);
}

// Label-blind training: the question depends on the key only, so it tells
// nothing about the label; live faces get all three questions.
TEST(Instructions, LabelBlindRuleIgnoresTheLabel) {
  std::map<StyleQuestion, int> live_counts;
  for (uint64_t key = 0; key < 3000; ++key) {
    const StyleQuestion live = PickStyleQuestion(StyleQuestionRule::kLabelBlind, 0, key);
    EXPECT_EQ(live, PickStyleQuestion(StyleQuestionRule::kLabelBlind, 1, key));
    EXPECT_EQ(live, UniformStyleQuestion(key));
    ++live_counts[live];
  }
  ASSERT_EQ(live_counts.size(), 3u);
  for (const auto& [q, n] : live_counts) EXPECT_NEAR(n, 1000, 100) << static_cast<int>(q);
  EXPECT_THROW(PickStyleQuestion(StyleQuestionRule::kLabelBlind, -1, 0), Error);
}

// data.style_questions: a pool of N draws from the first N of illumination,
// environment, camera quality; under the reference rule a live face is still
// asked camera quality.
TEST(Instructions, AStyleQuestionPoolDrawsFromItsFirstQuestions) {
  for (int pool = 1; pool <= 3; ++pool) {
    std::set<StyleQuestion> drawn;
    for (uint64_t key = 0; key < 300; ++key) {
      drawn.insert(PickStyleQuestion(StyleQuestionRule::kLabelBlind, 0, key, pool));
      EXPECT_EQ(PickStyleQuestion(StyleQuestionRule::kReference, 0, key, pool), StyleQuestion::kCameraQuality);
    }
    EXPECT_EQ(drawn.size(), static_cast<size_t>(pool));
    EXPECT_EQ(static_cast<int>(*drawn.rbegin()), pool - 1);
  }
  EXPECT_THROW(UniformStyleQuestion(0, 0), Error);
  EXPECT_THROW(UniformStyleQuestion(0, 4), Error);
}

TEST(Instructions, EveryRuleHasOneName) {
  for (StyleQuestionRule r : {StyleQuestionRule::kReference, StyleQuestionRule::kLabelBlind})
    EXPECT_EQ(kStyleQuestionRules.Find(kStyleQuestionRules.Name(r)), r);
  for (ScoringStyleQuestion r : {ScoringStyleQuestion::kUniform, ScoringStyleQuestion::kIllumination,
                                 ScoringStyleQuestion::kEnvironment, ScoringStyleQuestion::kCameraQuality,
                                 ScoringStyleQuestion::kEnsemble})
    EXPECT_EQ(kScoringStyleQuestions.Find(kScoringStyleQuestions.Name(r)), r);
  EXPECT_STREQ(kStyleQuestionRules.Name(StyleQuestionRule::kLabelBlind), "label_blind");
  EXPECT_STREQ(kScoringStyleQuestions.Name(ScoringStyleQuestion::kCameraQuality), "camera_quality");
  EXPECT_FALSE(kStyleQuestionRules.Find("label-blind").has_value());
}

TEST(Instructions, AllInstructionTextsAreTheDistinctStrings) {
  const std::vector<std::string> texts = AllInstructionTexts();
  EXPECT_EQ(texts.size(), 4u + 11 + 4 + 2 + 3 + 1);
  EXPECT_EQ(std::set<std::string>(texts.begin(), texts.end()).size(), texts.size());
  for (const char* q :
       {kSpoofQuestion, kIlluminationQuestion, kEnvironmentQuestion, kCameraQualityQuestion})
    EXPECT_NE(std::find(texts.begin(), texts.end(), q), texts.end()) << q;
  EXPECT_NE(std::find(texts.begin(), texts.end(), "No GT"), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), "(11) 3D mask"), texts.end());
}

TEST(TokenCache, TokenizesEachDistinctTextOnceUnderConcurrency) {
  std::mutex mutex;
  std::map<std::string, int> calls;
  TokenCache cache([&](const std::string& text) {
    {
      const std::lock_guard<std::mutex> lock(mutex);
      ++calls[text];
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // widen race windows
    return std::vector<int64_t>{static_cast<int64_t>(text.size()), 7};
  });
  const std::vector<std::string> texts = AllInstructionTexts();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = 0; i < texts.size(); ++i) {
          const std::string& text = texts[(i * (t + 1) + round) % texts.size()];
          const std::vector<int64_t>& ids = cache.Get(text);
          if (ids != std::vector<int64_t>{static_cast<int64_t>(text.size()), 7}) ++wrong;
        }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(calls.size(), texts.size());
  for (const auto& [text, n] : calls) EXPECT_EQ(n, 1) << text;
  // References stay valid and identical across calls.
  EXPECT_EQ(&cache.Get(texts[0]), &cache.Get(texts[0]));
}

TEST(TokenCache, AFailedTokenizationIsNotCached) {
  int calls = 0;
  TokenCache cache([&](const std::string& text) -> std::vector<int64_t> {
    if (++calls == 1) throw std::runtime_error("transient");
    return {static_cast<int64_t>(text.size())};
  });
  EXPECT_THROW(cache.Get("abc"), std::runtime_error);
  EXPECT_EQ(cache.Get("abc"), std::vector<int64_t>{3});
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace instructflip
