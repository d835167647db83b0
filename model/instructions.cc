// Instruction texts copied verbatim from the reference
// (kunkunlin1221/InstructFLIP, src/dataset/instruct/_ca_instruction.py): the
// option lists, and each question built as in Python,
//   "Choose the correct option to the following question: <q>\n" + " ".join(options).
// Answer selection follows ca_dataset.py: content answer = options[spoof_type];
// style answer = options[illumination - 1] / options[envir - 1] /
// options[quality] there, which are our stored codes directly (the store keeps
// illumination and environment 0-based). The reference's style key is
// random.choice over the three for spoofs and 'camera quality' for lives in
// training (StyleQuestionRule::kReference), random.choice over the three for
// every target sample; here each choice is a pure function of a key (rng.h) so
// runs are reproducible.
#include "model/instructions.h"

#include <iterator>
#include <utility>

#include "dataio/base/check.h"
#include "dataio/base/rng.h"

namespace instructflip {
namespace {

constexpr char kPrompt[] = "Choose the correct option to the following question: ";

// Constant-initialised (no static-order hazards for callers during start-up).
constexpr const char* kSpoofTypeOptions[] = {
    "(1) Real face",      "(2) Photo",        "(3) Poster",
    "(4) A4-paper",       "(5) 2D face mask", "(6) 2D upper-body mask",
    "(7) 2D region mask", "(8) PC screen",    "(9) Pad screen",
    "(10) Phone screen",  "(11) 3D mask"};
constexpr const char* kIlluminationOptions[] = {"(1) Normal", "(2) Strong", "(3) Back", "(4) Dark"};
constexpr const char* kEnvironmentOptions[] = {"(1) Indoor", "(2) Outdoor"};
constexpr const char* kCameraQualityOptions[] = {"(1) Low", "(2) Medium", "(3) High"};

// Stream tag so that a sample key reused elsewhere gives an independent draw.
constexpr uint64_t kStyleQuestionStream = 0x5354594C45515545ull;  // "STYLEQUE"

struct Question {
  const char* text;
  const char* const* options;
  int num_options;
};

template <size_t N>
constexpr Question MakeQuestion(const char* text, const char* const (&options)[N]) {
  return {text, options, static_cast<int>(N)};
}

constexpr Question kContentQuestion =
    MakeQuestion("Which type of spoof type is in this image?", kSpoofTypeOptions);
// Indexed by StyleQuestion.
constexpr Question kStyleQuestions[] = {
    MakeQuestion("What is the illumination condition in this image?", kIlluminationOptions),
    MakeQuestion("What is the environment in this image?", kEnvironmentOptions),
    MakeQuestion("What is the camera quality in this image?", kCameraQualityOptions),
};
static_assert(std::size(kStyleQuestions) == kNumStyleQuestions);

std::string QuestionText(const Question& q) {
  std::string text = std::string(kPrompt) + q.text + "\n";
  for (int i = 0; i < q.num_options; ++i) {
    if (i > 0) text += ' ';
    text += q.options[i];
  }
  return text;
}

void RequireAttribute(int value, const Question& q, const char* name) {
  IF_REQUIRE(value == -1 || (value >= 0 && value < q.num_options), name, " ", value,
             " is outside [0, ", q.num_options, ") and not -1 (unknown)");
}

}  // namespace

Instruction ContentInstruction(int spoof_type) {
  if (spoof_type == -1) return {QuestionText(kContentQuestion), kNoGroundTruthAnswer, false};
  IF_REQUIRE(spoof_type >= 0 && spoof_type < kContentQuestion.num_options, "spoof_type ",
             spoof_type, " is outside [-1, ", kContentQuestion.num_options, ")");
  return {QuestionText(kContentQuestion), kSpoofTypeOptions[spoof_type], true};
}

Instruction StyleInstruction(StyleQuestion which, int illumination, int environment,
                             int camera_quality) {
  const int values[] = {illumination, environment, camera_quality};
  for (int i = 0; i < kNumStyleQuestions; ++i)
    RequireAttribute(values[i], kStyleQuestions[i], kStyleQuestionNames.Name(static_cast<StyleQuestion>(i)));
  const int index = static_cast<int>(which);
  IF_REQUIRE(index >= 0 && index < kNumStyleQuestions, "unknown style question ", index);
  const Question& q = kStyleQuestions[index];
  if (values[index] < 0) return {QuestionText(q), kNoGroundTruthAnswer, false};
  return {QuestionText(q), q.options[values[index]], true};
}

StyleQuestion UniformStyleQuestion(uint64_t key, int pool) {
  IF_REQUIRE(pool >= 1 && pool <= kNumStyleQuestions, "style question pool must be 1..", kNumStyleQuestions,
             ", got ", pool);
  KeyedRng rng(HashKeys({kStyleQuestionStream, key}));
  return static_cast<StyleQuestion>(rng.Below(pool));
}

StyleQuestion PickStyleQuestion(StyleQuestionRule rule, int label, uint64_t key, int pool) {
  IF_REQUIRE(label == 0 || label == 1, "label ", label, " is neither 0 (live) nor 1 (spoof)");
  if (rule == StyleQuestionRule::kReference && label == 0) return StyleQuestion::kCameraQuality;
  return UniformStyleQuestion(key, pool);
}

std::string DescribeScoringStyleQuestion(const std::string& name) {
  return kScoringStyleQuestions.Find(name) ? name + " (never from the label)" : name;
}

std::vector<std::string> AllInstructionTexts() {
  std::vector<std::string> texts = {QuestionText(kContentQuestion)};
  for (const Question& q : kStyleQuestions) texts.push_back(QuestionText(q));
  texts.insert(texts.end(), std::begin(kSpoofTypeOptions), std::end(kSpoofTypeOptions));
  for (const Question& q : kStyleQuestions)
    texts.insert(texts.end(), q.options, q.options + q.num_options);
  texts.push_back(kNoGroundTruthAnswer);
  return texts;
}

TokenCache::TokenCache(Tokenizer tokenize) : tokenize_(std::move(tokenize)) {
  IF_REQUIRE(static_cast<bool>(tokenize_), "TokenCache needs a tokenize function");
}

const std::vector<int64_t>& TokenCache::Get(const std::string& text) {
  // One lock around lookup and tokenization: the distinct texts are few and
  // tokenized once each, so contention is negligible and no text is tokenized
  // twice by racing threads.
  const std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(text);
  if (it == cache_.end()) it = cache_.emplace(text, tokenize_(text)).first;
  return it->second;
}

}  // namespace instructflip
