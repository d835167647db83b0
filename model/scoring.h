// Scoring without the label, by construction. Evaluation, the validation
// threshold, LODO tests and explanations build the model's inputs here, from
// an UnlabeledBatch: a sample's pixels and its key, nothing else. No label or
// annotated attribute can reach a question text, a mask or a draw, because
// none is in scope (tests/model/scoring_test.cc pins the signatures, and
// tests/trainer/label_invariance_test.cc proves it end to end: stores that
// differ only in their labels give bit-identical scores).
#pragma once

#include <vector>

#include "dataio/base/torch_compat.h"
#include "model/instruct_flip.h"
#include "model/instruction_batch.h"
#include "model/instructions.h"
#include "model/t5_tokenizer.h"

namespace instructflip {

// What scoring may know of B samples. Exactly these two fields.
struct UnlabeledBatch {
  torch::Tensor images;  // (B, 3, H, W) normalised
  torch::Tensor keys;    // (B,) int64 per-sample key (the store index): seeds the style-question draw
};

// One forward pass of a batch: the question each sample is asked, and the inputs.
struct ScoringPass {
  std::vector<StyleQuestion> style;
  InstructFlipInputs inputs;
};

// The passes of `batch` under `rule`: three for kEnsemble (illumination,
// environment, camera quality), one otherwise.
std::vector<ScoringPass> MakeScoringInputs(const UnlabeledBatch& batch, ScoringStyleQuestion rule,
                                           InstructionBatcher& batcher);

struct ScoredBatch {
  torch::Tensor spoof_score;    // (B,) P(spoof), the mean over the passes
  ScoringPass first_pass;       // the first pass and its outputs (explanations)
  InstructFlipOutputs first_outputs;
};

// Scores `batch` with `model` (its mode as it is; call under NoGradGuard) on `device`.
ScoredBatch ScoreBatch(InstructFlipImpl& model, const UnlabeledBatch& batch, ScoringStyleQuestion rule,
                       InstructionBatcher& batcher, const torch::Device& device);

// The T5's greedy answers to the content and style questions of `rows` of a
// scored batch (its first pass); empty texts for a question the variant does
// not ask or a model built without its language model.
struct Answers {
  std::vector<std::string> content, style;  // one per row
};
Answers AnswerQuestions(InstructFlipImpl& model, const ScoredBatch& scored, const std::vector<int64_t>& rows,
                        const T5Tokenizer& t5);

}  // namespace instructflip
