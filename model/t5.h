// T5 v1.1 / FLAN-T5 encoder-decoder: RMS LayerNorm (no mean, no bias), gated-GELU
// feed-forward, unscaled attention with learned relative-position buckets
// (computed by the first layer of each stack and shared by the others), and
// an untied lm_head (tie_word_embeddings for original T5). Names follow Hugging
// Face's T5ForConditionalGeneration ("shared", "encoder.block.0.layer.0.
// SelfAttention.q", "decoder.block.3.layer.1.EncDecAttention.k", "lm_head", ...).
// InstructFLIP keeps every T5 weight frozen; gradients still flow through it.
#pragma once

#include <vector>

#include "dataio/base/torch_compat.h"
#include "model/model_config.h"

namespace instructflip {

class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(int d_model, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // RMS norm in fp32, output in x's dtype
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(T5LayerNorm);

// Bucket of each relative position (memory - query), as T5.
torch::Tensor RelativePositionBucket(const torch::Tensor& relative_position, bool bidirectional,
                                     int num_buckets, int max_distance);

// LoRA's low-rank update (alpha / rank) * B A x of one frozen Linear (PEFT's
// LoraConfig): A kaiming-uniform, B zero, so a fresh adapter changes nothing.
// Its parameters are the only ones of the T5 that train (FreezeT5BaseWeights).
class LoraAdapterImpl : public torch::nn::Module {
 public:
  LoraAdapterImpl(int in_features, int out_features, const LoraConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // the update only
  torch::Tensor A, B;  // (rank, in), (out, rank)

 private:
  double scale_, dropout_;
};
TORCH_MODULE(LoraAdapter);

// linear(x), plus the adapter's update where there is one.
torch::Tensor WithLora(torch::nn::Linear& linear, LoraAdapter& adapter, const torch::Tensor& x);

class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5Config& config, bool has_relative_bias, bool bidirectional);
  // Bias (1, H, Lq, Lk) for queries at positions [query_offset, query_offset + Lq).
  torch::Tensor PositionBias(int64_t query_length, int64_t key_length, int64_t query_offset,
                             const torch::Device& device);
  // Projections of keys/values (B, H, Lk, d_kv) for a context.
  std::pair<torch::Tensor, torch::Tensor> KeyValues(const torch::Tensor& context);
  // x: (B, Lq, d_model); keys/values from KeyValues; bias additive (incl. masks).
  torch::Tensor Attend(const torch::Tensor& x, const torch::Tensor& keys, const torch::Tensor& values,
                       const torch::Tensor& bias);

  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  LoraAdapter q_lora{nullptr}, k_lora{nullptr}, v_lora{nullptr}, o_lora{nullptr};  // t5.lora's targets
  torch::nn::Embedding relative_attention_bias{nullptr};  // only in the first layer

 private:
  T5Config config_;
  bool bidirectional_;
};
TORCH_MODULE(T5Attention);

class T5DenseGatedGeluImpl : public torch::nn::Module {
 public:
  explicit T5DenseGatedGeluImpl(const T5Config& config);
  torch::Tensor forward(const torch::Tensor& x);  // wo(act(wi_0 x) * wi_1 x)
  torch::nn::Linear wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
  LoraAdapter wi_0_lora{nullptr}, wi_1_lora{nullptr}, wo_lora{nullptr};

 private:
  std::string approximate_;  // "none" (exact GELU) or "tanh" (gelu_new)
};
TORCH_MODULE(T5DenseGatedGelu);

// One residual sub-layer: x + f(layer_norm(x)). Exactly one of the three is set.
class T5SubLayerImpl : public torch::nn::Module {
 public:
  enum class Kind { kSelfAttention, kCrossAttention, kFeedForward };
  T5SubLayerImpl(const T5Config& config, Kind kind, bool has_relative_bias, bool bidirectional);
  T5LayerNorm layer_norm{nullptr};
  T5Attention SelfAttention{nullptr};
  T5Attention EncDecAttention{nullptr};
  T5DenseGatedGelu DenseReluDense{nullptr};
};
TORCH_MODULE(T5SubLayer);

class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& config, bool is_decoder, bool has_relative_bias);
  T5SubLayer sub(size_t i) { return T5SubLayer(layer->ptr<T5SubLayerImpl>(i)); }
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(T5Block);

class T5StackImpl : public torch::nn::Module {
 public:
  T5StackImpl(const T5Config& config, bool is_decoder);
  T5Block block_at(size_t i) { return T5Block(block->ptr<T5BlockImpl>(i)); }
  torch::nn::ModuleList block{nullptr};
  T5LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5Stack);

// Per-layer keys/values for incremental greedy decoding.
struct T5DecoderCache {
  std::vector<torch::Tensor> self_keys, self_values;    // grow by one position per step
  std::vector<torch::Tensor> cross_keys, cross_values;  // fixed, from the encoder output
  torch::Tensor cross_bias;                             // encoder padding mask, additive
  int64_t length = 0;
};

class T5ModelImpl : public torch::nn::Module {
 public:
  explicit T5ModelImpl(const T5Config& config);

  // inputs_embeds: (B, L, d_model), keep: (B, L) 1/0. Returns (B, L, d_model).
  torch::Tensor Encode(const torch::Tensor& inputs_embeds, const torch::Tensor& keep);
  // Teacher-forced decoder: decoder_input_ids, decoder_keep (B, T). Returns logits (B, T, vocab).
  torch::Tensor Decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& decoder_keep,
                       const torch::Tensor& encoder_out, const torch::Tensor& encoder_keep);
  // Token cross-entropy of `labels` (B, T), -100 ignored, decoder inputs = labels
  // shifted right: the mean over the labelled tokens, or their sum divided by
  // `normalizer` when it is > 0 (a count over the whole global batch).
  torch::Tensor LanguageModelLoss(const torch::Tensor& encoder_out, const torch::Tensor& encoder_keep,
                                  const torch::Tensor& labels, double normalizer = 0);
  // Greedy decoding with a key/value cache; stops at </s> (all rows) or max_new_tokens.
  // Returns (B, <= max_new_tokens) token ids, padded with pad (0) after </s>.
  torch::Tensor GenerateGreedy(const torch::Tensor& encoder_out, const torch::Tensor& encoder_keep,
                               int max_new_tokens, int64_t eos_id);

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  torch::nn::Linear lm_head{nullptr};  // absent when tie_word_embeddings

 private:
  torch::Tensor LogitsFromHidden(const torch::Tensor& hidden);
  T5Config config_;
};
TORCH_MODULE(T5Model);

// Freezes the T5's own weights; its LoRA adapters (if any) stay trainable.
void FreezeT5BaseWeights(T5ModelImpl& t5);
// Whether a T5 parameter name belongs to a LoRA adapter ("..._lora.A").
bool IsLoraParameter(const std::string& name);

}  // namespace instructflip
