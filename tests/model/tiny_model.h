// Test helpers for the model tests: a tiny InstructFLIP configuration (runs in
// milliseconds on a CPU) and tokenizers trained on the instruction texts, so
// tests need no downloaded vocabulary, spiece.model or checkpoint.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataio/base/torch_compat.h"
#include "model/instruct_flip.h"
#include "model/instruction_batch.h"
#include "model/instructions.h"
#include "model/model_config.h"
#include "model/t5.h"
#include "model/t5_tokenizer.h"
#include "model/wordpiece_tokenizer.h"

namespace instructflip::testutil {

// Tokenizers built once per process from AllInstructionTexts(): a WordPiece
// vocabulary holding every word of the instructions and a 200-piece (at most)
// sentencepiece unigram model with T5's special ids.
struct TinyTokenizers {
  std::shared_ptr<const WordPieceTokenizer> bert;
  std::shared_ptr<const T5Tokenizer> t5;
};

inline const TinyTokenizers& GetTinyTokenizers() {
  static const TinyTokenizers tokenizers = [] {
    const std::vector<std::string> texts = AllInstructionTexts();
    TinyTokenizers t;
    t.bert = std::shared_ptr<const WordPieceTokenizer>(WordPieceTokenizer::FromVocab(BuildWordPieceVocab(texts)));
    t.t5 = std::shared_ptr<const T5Tokenizer>(T5Tokenizer::FromSerialized(TrainSentencePiece(texts, 200, 0)));
    return t;
  }();
  return tokenizers;
}

// The fusion module and cue generator at the tiny configuration's size (width 32).
inline void SetTinyFusionAndCue(ModelConfig& c) {
  c.fusion.heads = 2;
  c.fusion.cross_heads = 2;
  c.fusion.cross_head_dim = 16;
  c.fusion.feed_forward = 64;
  c.fusion.dropout = 0.0;
  c.cue_hidden = 8;
}

// The tiny configuration: 32 px images of 8 px patches (4 x 4 grid, 17 tokens),
// width 32 everywhere, 2-layer/2-head CLIP and Q-Formers with 4 queries, a
// 2+2-layer T5 of d_model 32, no dropout. Vocabulary sizes follow the tiny
// tokenizers. `variant` selects the ablation (with its reference loss weights).
inline ModelConfig TinyConfig(Variant variant = Variant::kFull) {
  const TinyTokenizers& tok = GetTinyTokenizers();
  ModelConfig c;
  c.name = "tiny-test";
  c.variant = variant;
  c.loss = DefaultLossWeights(variant);
  c.vision.image_size = 32;
  c.vision.patch_size = 8;
  c.vision.width = 32;
  c.vision.layers = 2;
  c.vision.heads = 2;
  c.qformer.hidden = 32;
  c.qformer.layers = 2;
  c.qformer.heads = 2;
  c.qformer.intermediate = 64;
  c.qformer.num_queries = 4;
  c.qformer.vocab_size = static_cast<int>(tok.bert->vocab_size());
  c.qformer.max_positions = 128;
  c.qformer.dropout = 0.0;
  c.t5.vocab_size = static_cast<int>(std::max<int64_t>(tok.t5->vocab_size(), 32));
  c.t5.d_model = 32;
  c.t5.d_kv = 8;
  c.t5.heads = 4;
  c.t5.d_ff = 64;
  c.t5.encoder_layers = 2;
  c.t5.decoder_layers = 2;
  SetTinyFusionAndCue(c);
  c.max_new_tokens = 16;
  return c;
}

// Attributes of one test sample.
struct TinySample {
  int spoof_type = 0;       // 0 live, 1..10 spoof types (CelebA-Spoof order)
  int illumination = 0;     // 0..3 or -1
  int environment = 0;      // 0..1 or -1
  int camera_quality = 0;   // 0..2 or -1
  int64_t key = 0;          // per-sample key of the style-question draw
  int label = -1;           // 0 live, 1 spoof; -1: spoof_type > 0 (a spoof of unknown type needs 1)
};

inline constexpr uint64_t kTinyBatcherSeed = 11;

inline InstructionBatcher MakeTinyBatcher(const ModelConfig& config) {
  const TinyTokenizers& tok = GetTinyTokenizers();
  return InstructionBatcher(tok.bert, tok.t5, config, kTinyBatcherSeed);
}

// Inputs and targets for `samples`: images N(0, 1) of the config's size drawn
// from torch's generator (seed it first), labels as TinySample says, and every text
// field filled by an InstructionBatcher (seed kTinyBatcherSeed) under `rule`.
inline InstructFlipExample MakeTinyInputs(const ModelConfig& config, const std::vector<TinySample>& samples,
                                          StyleQuestionRule rule = StyleQuestionRule::kReference) {
  const int64_t B = static_cast<int64_t>(samples.size());
  std::vector<int64_t> label, spoof, illumination, environment, quality, keys;
  for (const TinySample& s : samples) {
    label.push_back(s.label >= 0 ? s.label : s.spoof_type > 0 ? 1 : 0);
    spoof.push_back(s.spoof_type);
    illumination.push_back(s.illumination);
    environment.push_back(s.environment);
    quality.push_back(s.camera_quality);
    keys.push_back(s.key);
  }
  auto t = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
  const torch::Tensor images = torch::randn({B, 3, config.vision.image_size, config.vision.image_size});
  SampleTexts texts{t(label), t(spoof), t(illumination), t(environment), t(quality), t(keys)};
  InstructionBatcher batcher = MakeTinyBatcher(config);
  InstructFlipExample example = batcher.TrainingExample(texts, rule);
  example.inputs.images = images;
  return example;
}

// Two live and two spoof samples with varied attributes.
inline std::vector<TinySample> MixedSamples() {
  return {{0, 0, 0, 0, 1}, {3, 1, 1, 1, 2}, {0, 2, 1, 2, 3}, {8, 3, 0, 1, 4}};
}

inline int64_t CountParameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace instructflip::testutil
