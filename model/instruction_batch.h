// Turns instructions into the model's text inputs and a batch's attributes into
// its training targets: for every sample the content question (spoof type) and
// one style question, tokenised for the Q-Former (WordPiece) and for T5
// (sentencepiece), padded to the longest in the batch (Questions: the model's
// inputs, which take the chosen questions and nothing else), and the answers
// as T5 labels (-100 padding, a row of -100 where the attribute is unknown so
// the sample leaves that LM loss) with the no_llm/mc classes (Targets).
// Style questions are drawn from per-sample keys, so they are reproducible (the
// reference draws them with Python's global RNG, even at evaluation).
// Each distinct string is tokenised once (TokenCache).
#pragma once

#include <memory>

#include "dataio/base/torch_compat.h"
#include "model/instruct_flip.h"
#include "model/instructions.h"
#include "model/t5_tokenizer.h"
#include "model/wordpiece_tokenizer.h"

namespace instructflip {

struct SampleTexts {
  torch::Tensor label;           // (B,) int64
  torch::Tensor spoof_type;      // (B,) int64
  torch::Tensor illumination;    // (B,) int64, -1 unknown
  torch::Tensor environment;     // (B,) int64, -1 unknown
  torch::Tensor camera_quality;  // (B,) int64, -1 unknown
  torch::Tensor keys;            // (B,) int64, per-sample key of the style-question draw
};

// The 11-way style class of the no_llm / mc heads, the reference's layout
// (CAMCDataset): illumination 0 none, 1..4; environment 5 none, 6..7; camera
// quality 8..10. A live face (label 0) has no spoof illumination or
// environment: its class is "none". -100 where the attribute is unknown (the
// reference maps an unknown camera quality to 7, environment's "outdoor").
int64_t StyleClass(StyleQuestion question, int label, int illumination, int environment, int camera_quality);

class InstructionBatcher {
 public:
  InstructionBatcher(std::shared_ptr<const WordPieceTokenizer> bert, std::shared_ptr<const T5Tokenizer> t5,
                     const ModelConfig& config, uint64_t seed);

  // The question inputs of B samples (images left undefined): the content
  // question, the same for all, and style[i] for sample i. Empty prompts in
  // the classifier variants (ModelConfig::asks_questions).
  InstructFlipInputs Questions(const std::vector<StyleQuestion>& style);
  // The answers and classes of B samples asked style[i].
  InstructFlipTargets Targets(const SampleTexts& samples, const std::vector<StyleQuestion>& style);
  // Questions and targets of a training batch under `rule` (images left undefined).
  // `pool`: the style questions drawn from (PickStyleQuestion).
  InstructFlipExample TrainingExample(const SampleTexts& samples, StyleQuestionRule rule,
                                      int pool = kNumStyleQuestions);

  // The training question of a sample under `rule`; in the classifier
  // variants the reference's uniform draw over all three for every sample.
  StyleQuestion TrainingQuestion(StyleQuestionRule rule, int64_t label, int64_t key,
                                 int pool = kNumStyleQuestions) const;
  // A label-independent question per sample key (seeded by this batcher's seed).
  StyleQuestion UniformQuestion(int64_t key) const;

  const T5Tokenizer& t5() const { return *t5_; }

 private:
  TokenBatch Pad(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad) const;

  std::shared_ptr<const WordPieceTokenizer> bert_;
  std::shared_ptr<const T5Tokenizer> t5_;
  ModelConfig config_;
  uint64_t seed_;
  TokenCache bert_cache_, t5_question_cache_, t5_answer_cache_;
};

}  // namespace instructflip
