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

struct BuildOptions {
  // The frozen T5 (InstructFlipImpl): scoring alone does without it.
  bool language_model = true;
  // Load config.pretrained's files. Off when trained weights replace them all
  // at once (predict, export): those files need not exist where a model is used.
  bool pretrained = true;
};

BuiltModel BuildModel(ModelConfig config, const BuildOptions& options = {});

}  // namespace instructflip
