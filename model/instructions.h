// The reference's multiple-choice instructions (InstructFLIP
// src/dataset/instruct/_ca_instruction.py and ca_dataset.py): one content
// question (spoof type) and three style questions (illumination, environment,
// camera quality), each "Choose the correct option to the following question:
// <question>\n(1) <option> (2) <option> ..."; the answer is one option string.
// Torch-free; the model tokenizes these with T5Tokenizer / WordPieceTokenizer.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataio/base/choices.h"

namespace instructflip {

// The answer used where the ground truth is unknown (the reference's
// RGBInstructDataset, for datasets without attribute annotations).
inline constexpr char kNoGroundTruthAnswer[] = "No GT";

// Order as the reference's style_keys.
enum class StyleQuestion { kIllumination = 0, kEnvironment = 1, kCameraQuality = 2 };
inline constexpr int kNumStyleQuestions = 3;

struct Instruction {
  std::string question;
  std::string answer;
  bool answer_known = false;
};

// Spoof-type question; answer = the option for `spoof_type` (0..10, CelebA-Spoof
// order, schema.h), or "No GT" with answer_known=false for -1 (a spoof of
// unknown type). Throws instructflip::Error outside -1..10.
Instruction ContentInstruction(int spoof_type);

// The question for `which`; answer = the option for that attribute (our codes
// are the reference's option indices: illumination 0..3, environment 0..1,
// camera quality 0..2), or "No GT" with answer_known=false when it is -1.
// Throws instructflip::Error if any attribute is outside its range and not -1.
Instruction StyleInstruction(StyleQuestion which, int illumination, int environment,
                             int camera_quality);

// As predictions and explanations name the question asked.
inline const Choices<StyleQuestion> kStyleQuestionNames{{"illumination", StyleQuestion::kIllumination},
                                                        {"environment", StyleQuestion::kEnvironment},
                                                        {"camera_quality", StyleQuestion::kCameraQuality}};

// A question drawn uniformly from the three as a pure function of `key`,
// independent of any label: the reference's rule for its target datasets
// (rgb_dataset.py), and every sample's question under kLabelBlind. With
// `pool` < 3 from the first `pool` of illumination, environment, camera
// quality (the reference's num_style_prompt ablation).
StyleQuestion UniformStyleQuestion(uint64_t key, int pool = kNumStyleQuestions);

// How training picks each sample's style question (config data.style_question).
enum class StyleQuestionRule {
  // The reference's CelebA-Spoof rule: a spoof (label 1) gets
  // UniformStyleQuestion(key), a live face (label 0) always camera quality. The
  // question then tells the label, and a model can learn that shortcut.
  kReference,
  // Every sample gets UniformStyleQuestion(key); an attribute it lacks is
  // "No GT" and leaves the LM loss (as any unknown answer).
  kLabelBlind,
};
inline const Choices<StyleQuestionRule> kStyleQuestionRules{{"label_blind", StyleQuestionRule::kLabelBlind},
                                                            {"reference", StyleQuestionRule::kReference}};

// The training question of a sample under `rule`. Throws instructflip::Error
// for a label other than 0 or 1.
// `pool` as UniformStyleQuestion's (a live face under kReference is still
// asked camera quality, as the reference's ablation dataset does).
StyleQuestion PickStyleQuestion(StyleQuestionRule rule, int label, uint64_t key, int pool = kNumStyleQuestions);

// How scoring (evaluation, validation, explanations) picks the style question
// (config eval.style_question); never from the label.
enum class ScoringStyleQuestion {
  kUniform,        // UniformStyleQuestion(key): the reference's target datasets
  kIllumination,   // one fixed question for every sample
  kEnvironment,
  kCameraQuality,
  kEnsemble,       // score with each of the three, average the spoof probabilities
};
inline const Choices<ScoringStyleQuestion> kScoringStyleQuestions{
    {"uniform", ScoringStyleQuestion::kUniform},
    {"ensemble", ScoringStyleQuestion::kEnsemble},
    {"illumination", ScoringStyleQuestion::kIllumination},
    {"environment", ScoringStyleQuestion::kEnvironment},
    {"camera_quality", ScoringStyleQuestion::kCameraQuality}};
// "uniform (never from the label)" for a rule's name; any other text (e.g. an
// older run's "unknown") as it is.
std::string DescribeScoringStyleQuestion(const std::string& name);

// Every distinct question and answer string, "No GT" included (for building
// tiny tokenizers and vocabularies).
std::vector<std::string> AllInstructionTexts();

// Memoises a tokenizer per distinct text. Thread-safe; `tokenize` runs once per
// distinct text (under the cache's lock; there are only ~25 distinct texts) and
// returned references stay valid for the cache's lifetime. If `tokenize` throws,
// nothing is cached and the exception propagates.
class TokenCache {
 public:
  using Tokenizer = std::function<std::vector<int64_t>(const std::string&)>;
  explicit TokenCache(Tokenizer tokenize);
  const std::vector<int64_t>& Get(const std::string& text);

 private:
  Tokenizer tokenize_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<int64_t>> cache_;  // nodes never move
};

}  // namespace instructflip
