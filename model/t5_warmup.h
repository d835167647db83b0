// A stand-in for FLAN-T5's pretraining, for models without pretrained T5
// weights (the tiny demo/test configurations). A random frozen T5 cannot be
// *steered*: a handful of soft tokens in front of a long question barely move
// its cross-attention (tiny config, free 4-token prompts optimised directly:
// LM loss stays ~4.6). So before the T5 is frozen it is trained, together with
// one learned prompt per (question, option) pair, to answer every instruction
// question with each of its options (20 pairs). Afterwards it "knows" how to
// say every option and the Q-Formers must learn which option to make it say,
// which is the situation InstructFLIP is in with a real FLAN-T5.
#pragma once

#include <string>

#include "model/model_config.h"
#include "model/t5.h"
#include "model/t5_tokenizer.h"

namespace instructflip {

struct T5WarmupResult {
  double loss = 0;  // LM loss of the last step
  int steps = 0;
};

// Trains until the loss is below config.t5_warmup.target_loss or for
// config.t5_warmup.steps steps, seeded by config.t5_warmup.seed (the result
// does not depend on the global torch generator). Leaves the T5 frozen
// (requires_grad false, no grad) and in eval mode.
T5WarmupResult WarmUpT5(T5Model& t5, const ModelConfig& config, const T5Tokenizer& tokenizer);

// WarmUpT5 computed once per content: the result is a function of the T5's
// initial weights, the warm-up and length settings and the tokenizer, so it is
// kept in `cache_dir`/t5-warmup-<hash>.safetensors (+ .json with loss and
// steps) and loaded when the same content comes again (each LODO job of a run
// starts from the same seed). Writes are atomic (temp + rename), so parallel
// jobs may share a directory. `from_cache` tells which happened.
T5WarmupResult WarmUpT5Cached(T5Model& t5, const ModelConfig& config, const T5Tokenizer& tokenizer,
                              const std::string& cache_dir, bool* from_cache = nullptr);

}  // namespace instructflip
