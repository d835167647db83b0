// Builds a ready model from its configuration: tokenizers, vocabulary sizes,
// the module tree, and the pretrained weights named in `config.pretrained`
// (each load reported to the log). The one entry point for the trainer, the
// evaluator and the benchmarks.
#pragma once

#include <vector>

#include "model/instruct_flip.h"
#include "model/tokenizers.h"
#include "model/weights.h"

namespace instructflip {

struct BuiltModel {
  ModelConfig config;  // with resolved vocabulary sizes
  Tokenizers tokenizers;
  InstructFlip model{nullptr};
  std::vector<LoadReport> reports;  // one per pretrained file loaded
};

BuiltModel BuildModel(ModelConfig config);

}  // namespace instructflip
