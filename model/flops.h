// Analytic FLOP count of one training step of InstructFLIP (matrix products
// only; a multiply-add counts 2). Formulas, per layer, with L tokens of width W:
//   CLIP layer:        24 L W^2 + 4 L^2 W          (q,k,v,o: 8LW^2; MLP 4W: 16LW^2; scores+AV: 4L^2W)
//   Q-Former layer:    8 S H^2 + 4 S^2 H           (self-attention over S = queries + text)
//                      + cross (if present): 4 Q H^2 + 4 N H E + 4 Q N H (q,o; k,v from N image tokens of width E; scores+AV)
//                      + 4 Q H I + 4 T H I         (query and text feed-forward; no text FFN in the last layer)
//   T5 encoder layer:  8 L d a + 4 L^2 a + 6 L d f (a = heads * d_kv; gated FFN: 3 matrices)
//   T5 decoder layer:  8 D d a + 4 D^2 a + 4 D d a + 4 L d a + 4 D L a + 6 D d f, lm_head 2 D d V
//   fusion:            8 L W^2 + 4 L^2 W (self) + 4 L W c + 4 M W c + 4 L (M+1) c (cross, c = heads*head_dim)
//                      + 4 L W F (feed-forward)
//   cue generator:     2 P 9 W h + 2 P 9 h 3
// Training = 3 x forward for trainable parts (forward, grad of inputs, grad of
// weights) and 2 x forward for the frozen T5 (no weight gradients), applied once
// per LM branch.
#pragma once

#include <cstdint>

#include "model/model_config.h"

namespace instructflip {

struct StepShape {
  int64_t content_text = 0;    // Q-Former text tokens of the content question
  int64_t style_text = 0;
  int64_t content_t5_input = 0;  // T5 question tokens (queries are added)
  int64_t style_t5_input = 0;
  int64_t content_answer = 0;    // T5 decoder tokens
  int64_t style_answer = 0;
};

struct FlopCount {
  double trainable_forward = 0;  // per image
  double frozen_forward = 0;     // per image (T5)
  double TrainingStep() const { return 3 * trainable_forward + 2 * frozen_forward; }
};

FlopCount CountFlopsPerImage(const ModelConfig& config, const StepShape& shape);

}  // namespace instructflip
