// Turns a batch's attributes into the model's text inputs: for every sample the
// content question (spoof type) and one style question (the reference's rule:
// a random one of three for spoof samples, camera quality for live ones),
// tokenised for the Q-Former (WordPiece) and for T5 (sentencepiece), padded to
// the longest in the batch, and the answers as T5 labels (-100 padding, a row
// of -100 where the attribute is unknown so the sample leaves that LM loss).
// The style question is drawn from a per-sample key, so it is reproducible
// (the reference draws it with Python's global RNG, even at evaluation).
// Each distinct string is tokenised once (TokenCache).
#pragma once

#include <memory>

#include "dataio/torch_compat.h"
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

// The 11-way style class of the no_llm / mc heads (the reference's layout:
// illumination 1..4, environment 6..7, camera quality 8..10), -100 if unknown.
int64_t StyleClass(StyleQuestion question, int illumination, int environment, int camera_quality);

class InstructionBatcher {
 public:
  InstructionBatcher(std::shared_ptr<const WordPieceTokenizer> bert, std::shared_ptr<const T5Tokenizer> t5,
                     const ModelConfig& config, uint64_t seed);

  // Fills the text fields of `inputs` (questions, answers, classes) for B samples.
  void Fill(const SampleTexts& samples, InstructFlipInputs* inputs);
  // The style question each sample gets (for explanations and tests).
  StyleQuestion StyleQuestionFor(int64_t label, int64_t key) const;

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
