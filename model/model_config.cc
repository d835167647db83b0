#include "model/model_config.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <absl/strings/str_split.h>

#include "dataio/base/check.h"

namespace instructflip {

std::vector<std::string> LoraConfig::TargetList() const { return absl::StrSplit(targets, ','); }

bool LoraConfig::Targets(const std::string& name) const {
  const std::vector<std::string> list = TargetList();
  return std::find(list.begin(), list.end(), name) != list.end();
}

LossWeights DefaultLossWeights(Variant variant) {
  LossWeights w;  // full and no_llm: 0.4 content, 0.4 style, 0.15 CE, 0.05 cue
  switch (variant) {
    case Variant::kFull:
    case Variant::kNoLlm:
      break;
    case Variant::kVisionOnly:
      w = {0.0, 0.0, 1.0, 0.0, 0.0};
      break;
    case Variant::kVisionContent:
      w = {0.5, 0.0, 0.5, 0.0, 0.0};
      break;
    case Variant::kVisionContentStyle:
      w = {0.4, 0.4, 0.2, 0.0, 0.0};
      break;
    case Variant::kMultiClass:
      w = {0.2, 0.2, 0.2, 0.0, 0.0};
      break;
  }
  return w;
}

void ValidateModelConfig(const ModelConfig& c) {
  // Positive, and below sizes no machine holds (a typo'd 10x would otherwise
  // end in an allocation failure that names nothing).
  auto positive = [](int value, const char* field) {
    IF_REQUIRE(value > 0 && value <= (1 << 16), "model config: field '", field, "' must be in 1..65536, got ", value);
  };
  positive(c.vision.image_size, "vision.image_size");
  positive(c.vision.patch_size, "vision.patch_size");
  positive(c.vision.width, "vision.width");
  positive(c.vision.layers, "vision.layers");
  positive(c.vision.heads, "vision.heads");
  IF_REQUIRE(c.vision.image_size % c.vision.patch_size == 0, "model config: vision.image_size ",
             c.vision.image_size, " is not a multiple of vision.patch_size ", c.vision.patch_size);
  IF_REQUIRE(c.vision.width % c.vision.heads == 0, "model config: vision.width ", c.vision.width,
             " is not a multiple of vision.heads ", c.vision.heads);
  positive(c.qformer.hidden, "qformer.hidden");
  positive(c.qformer.layers, "qformer.layers");
  positive(c.qformer.heads, "qformer.heads");
  positive(c.qformer.num_queries, "qformer.num_queries");
  positive(c.qformer.cross_attention_freq, "qformer.cross_attention_freq");
  IF_REQUIRE(c.qformer.hidden % c.qformer.heads == 0, "model config: qformer.hidden ", c.qformer.hidden,
             " is not a multiple of qformer.heads ", c.qformer.heads);
  IF_REQUIRE(c.qformer.hidden == c.vision.width, "model config: qformer.hidden ", c.qformer.hidden,
             " must equal vision.width ", c.vision.width, " (the fusion module mixes both)");
  IF_REQUIRE(c.vision.width % c.fusion.heads == 0, "model config: vision.width ", c.vision.width,
             " is not a multiple of fusion.heads ", c.fusion.heads);
  positive(c.t5.d_model, "t5.d_model");
  positive(c.t5.heads, "t5.heads");
  positive(c.t5.d_kv, "t5.d_kv");
  // Vocabulary sizes may be 0 here: "take the tokenizer's" (ResolveVocabularySizes).
  IF_REQUIRE(c.t5.vocab_size >= 0 && c.qformer.vocab_size >= 0, "model config: vocabulary sizes must be >= 0");
  positive(c.qformer.intermediate, "qformer.intermediate");
  positive(c.t5.d_ff, "t5.d_ff");
  positive(c.t5.encoder_layers, "t5.encoder_layers");
  positive(c.t5.decoder_layers, "t5.decoder_layers");
  // A rough parameter count (the weight matrices) against what fits any GPU host.
  const double vision = 12.0 * c.vision.layers * double(c.vision.width) * c.vision.width;
  const double qformer = 2.0 * c.qformer.layers * (8.0 * c.qformer.hidden * c.qformer.hidden +
                                                   2.0 * c.qformer.hidden * c.qformer.intermediate) +
                         double(c.qformer.vocab_size) * c.qformer.hidden;
  const double t5 = double(c.t5.encoder_layers + 2 * c.t5.decoder_layers) *
                        (4.0 * c.t5.d_model * c.t5.heads * c.t5.d_kv + 3.0 * c.t5.d_model * c.t5.d_ff) +
                    double(c.t5.vocab_size) * c.t5.d_model;
  const double parameters = vision + qformer + t5;
  IF_REQUIRE(parameters <= 2e10, "model config: about ", parameters / 1e9,
             " billion parameters; more than 20 billion is surely a typo (the paper's model has about 0.5)");
  positive(c.max_new_tokens, "max_new_tokens");
  IF_REQUIRE(c.t5_warmup.steps >= 0, "model config: t5_warmup.steps must be >= 0, got ", c.t5_warmup.steps);
  const LoraConfig& lora = c.t5.lora;
  IF_REQUIRE(lora.rank >= 0 && lora.rank <= 4096, "model config: lora.rank must be in 0..4096 (0: off), got ",
             lora.rank);
  IF_REQUIRE(lora.alpha > 0 && lora.dropout >= 0 && lora.dropout < 1, "model config: lora.alpha must be > 0 and "
             "lora.dropout in [0, 1), got ", lora.alpha, " and ", lora.dropout);
  // Rates and weights that LibTorch would refuse only mid-run, with no key
  // named, or never (a negative loss weight trains away from the task).
  auto fraction = [](double value, const char* field) {
    IF_REQUIRE(value >= 0 && value < 1, "model config: field '", field, "' must be in [0, 1), got ", value);
  };
  fraction(c.qformer.dropout, "qformer.dropout");
  fraction(c.fusion.dropout, "fusion.dropout");
  auto non_negative = [](double value, const char* field) {
    IF_REQUIRE(std::isfinite(value) && value >= 0, "model config: field '", field, "' must be >= 0, got ", value);
  };
  non_negative(c.loss.content_lm, "loss.content_lm");
  non_negative(c.loss.style_lm, "loss.style_lm");
  non_negative(c.loss.classification, "loss.classification");
  non_negative(c.loss.cue, "loss.cue");
  non_negative(c.loss.ssl, "loss.ssl");
  non_negative(c.cue_noise_weight, "cue_noise_weight");
  non_negative(c.t5_warmup.target_loss, "t5_warmup.target_loss");
  auto positive_real = [](double value, const char* field) {
    IF_REQUIRE(std::isfinite(value) && value > 0, "model config: field '", field, "' must be > 0, got ", value);
  };
  non_negative(c.cue_beta, "cue_beta");  // 0: L1
  positive_real(c.vision.layer_norm_eps, "vision.layer_norm_eps");
  positive_real(c.qformer.layer_norm_eps, "qformer.layer_norm_eps");
  positive_real(c.t5.layer_norm_eps, "t5.layer_norm_eps");
  if (c.t5_warmup.steps > 0) positive_real(c.t5_warmup.lr, "t5_warmup.lr");
  positive(c.cue_hidden, "cue_hidden");
  if (lora.enabled())
    for (const std::string& name : lora.TargetList())
      IF_REQUIRE(name == "q" || name == "k" || name == "v" || name == "o" || name == "wi_0" || name == "wi_1" ||
                     name == "wo",
                 "model config: lora.targets names '", name, "'; the T5 layers are q, k, v, o, wi_0, wi_1, wo");
}

}  // namespace instructflip
