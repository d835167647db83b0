// Configuration of the InstructFLIP model. Defaults are the paper's base model
// (CLIP ViT-B/16, 2-layer Q-Formers from bert-base-uncased, FLAN-T5-base);
// configs/model/base.yaml and tiny.yaml set them from YAML (parsed in launch/).
#pragma once

#include <string>
#include <vector>

#include "dataio/base/choices.h"

namespace instructflip {

struct VisionConfig {
  int image_size = 224;
  int patch_size = 16;
  int width = 768;
  int layers = 12;
  int heads = 12;
  double layer_norm_eps = 1e-5;
};

struct QFormerConfig {
  int hidden = 768;
  int layers = 2;
  int heads = 16;
  int intermediate = 3072;
  int num_queries = 32;
  int cross_attention_freq = 2;  // cross-attention in layers 0, freq, 2*freq, ...
  int vocab_size = 30523;        // bert-base-uncased 30522 + BLIP-2's [DEC]
  int max_positions = 512;
  int max_text_length = 128;     // instruction tokens kept (truncation from the left, as the reference)
  double layer_norm_eps = 1e-7;
  double dropout = 0.1;          // hidden and attention-probability dropout (BERT's), training only
};

// LoRA on the frozen T5 (the reference's enable_qlora_on_llm, PEFT's
// LoraConfig): rank 0 = off (the reference's default and every paper run).
// The reference loads the T5 in 4-bit (bitsandbytes); LibTorch has no such
// loader, so the base weights stay fp32 (bf16 runs compute under autocast).
struct LoraConfig {
  int rank = 0;
  double alpha = 16;
  double dropout = 0.1;  // never active: the frozen T5 always runs in eval mode, as the reference's
  std::string targets = "q,k,v,o,wi_0,wi_1,wo";  // the T5 Linear layers adapted
  bool enabled() const { return rank > 0; }
  std::vector<std::string> TargetList() const;  // `targets` split at commas
  bool Targets(const std::string& name) const;
};

struct T5Config {
  int vocab_size = 32128;
  int d_model = 768;
  int d_kv = 64;
  int d_ff = 2048;
  int encoder_layers = 12;
  int decoder_layers = 12;
  int heads = 12;
  int relative_buckets = 32;
  int relative_max_distance = 128;
  double layer_norm_eps = 1e-6;
  bool tie_word_embeddings = false;  // FLAN-T5 (T5 v1.1) has its own lm_head
  int max_input_length = 128;        // instruction tokens kept (truncation from the left)
  int max_output_length = 16;        // answer tokens kept (truncation from the right)
  // The reference switches FLAN-T5's "gelu_new" (tanh) to exact "gelu".
  std::string feed_forward_activation = "gelu";
  LoraConfig lora;
};

struct FusionConfig {
  int heads = 16;                     // self-attention heads (head dim = width / heads)
  int cross_heads = 16;               // cross-attention heads of `cross_head_dim`
  int cross_head_dim = 64;
  int feed_forward = 2048;
  double dropout = 0.1;               // after the feed-forward (training only)
  // The reference's self-attention is causal (its attention class defaults to a
  // causal mask) and its feed-forward has no residual; both are kept by
  // default so trained behaviour matches, and can be switched off.
  bool causal_self_attention = true;
  bool feed_forward_residual = false;
};

// Which branches exist (the reference's ablations).
enum class Variant { kFull, kNoLlm, kVisionOnly, kVisionContent, kVisionContentStyle, kMultiClass };
inline const Choices<Variant> kVariants{{"full", Variant::kFull},          {"no_llm", Variant::kNoLlm},
                                       {"ve", Variant::kVisionOnly},       {"ve_cb", Variant::kVisionContent},
                                       {"ve_cb_sb", Variant::kVisionContentStyle}, {"mc", Variant::kMultiClass}};

struct LossWeights {
  double content_lm = 0.4;
  double style_lm = 0.4;
  double classification = 0.15;
  double cue = 0.05;
  double ssl = 0.0;
};

// Tokenizer sources: a file, a Hugging Face model directory holding it, or
// "instructions" for small vocabularies derived from the instruction texts
// (tiny configs, tests).
struct TokenizerConfig {
  std::string bert_vocab = "instructions";  // bert-base-uncased vocab.txt (or its directory)
  std::string t5_spiece = "instructions";   // flan-t5-base spiece.model (or its directory)
};

// Pretrained weights as downloaded from Hugging Face: a .safetensors file or a
// model directory (model/weights.h: FindPretrainedFiles); empty = random init.
struct PretrainedConfig {
  std::string clip;  // openai/clip-vit-base-patch16 (or OpenAI "visual.*" names)
  std::string bert;  // bert-base-uncased
  std::string t5;    // google/flan-t5-base
};

// Teaches a randomly initialised T5 the instruction options before it is
// frozen (model/t5_warmup.h): a stand-in for FLAN-T5's pretraining in tiny
// configurations. Used only when steps > 0 and no pretrained T5 is given.
struct T5WarmupConfig {
  int steps = 0;
  double lr = 1e-2;
  double target_loss = 0.005;  // stop early below this LM loss
  uint64_t seed = 7;
};

struct ModelConfig {
  std::string name = "base";
  Variant variant = Variant::kFull;
  VisionConfig vision;
  QFormerConfig qformer;
  T5Config t5;
  FusionConfig fusion;
  TokenizerConfig tokenizers;
  PretrainedConfig pretrained;
  T5WarmupConfig t5_warmup;
  LossWeights loss;
  double cue_noise_weight = 0.5;  // Gaussian noise on spoof samples' patch tokens (training)
  double cue_beta = 0.01;         // SmoothL1 beta of the cue-map loss
  int cue_hidden = 32;
  int max_new_tokens = 16;        // greedy generation of explanations

  bool has_content_branch() const { return variant != Variant::kVisionOnly; }
  bool has_style_branch() const {
    return variant != Variant::kVisionOnly && variant != Variant::kVisionContent;
  }
  bool has_llm() const { return variant == Variant::kFull; }
  // The reference's classifier ablations (no_llm, mc: its CAMCDataset) feed
  // empty prompts and train 11-way attribute heads instead of asking questions.
  bool asks_questions() const { return variant != Variant::kNoLlm && variant != Variant::kMultiClass; }
};

// The reference's loss weights of each variant (its configs/rgb/ablations/branch/).
LossWeights DefaultLossWeights(Variant variant);

// Throws instructflip::Error naming the field if the configuration is inconsistent
// (widths not divisible by heads, image not divisible by patches, ...).
void ValidateModelConfig(const ModelConfig& config);

}  // namespace instructflip
