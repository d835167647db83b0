// Fusion module of InstructFLIP: the content tokens of the vision encoder
// (B, 1 + P, width) are refined with the Q-Former query states (B, 64, width):
//   x = x + SelfAttention(x)      16 heads, LayerNorm on q and k (full width), causal as the reference
//   x = x + CrossAttention(x, q)  LayerNorm on x and on the queries, 16 x 64 heads, a learned null
//                                 key/value, output Linear + LayerNorm
//   x = FeedForward(x)            LayerNorm, width -> 2048 -> width, GELU, dropout; no residual as the reference
// Names follow the reference's state dict ("mha.Wqkv", "ca.to_kv", "ffn.1", ...).
#pragma once

#include "dataio/base/torch_compat.h"
#include "model/layer_norm.h"
#include "model/model_config.h"

namespace instructflip {

class FusionSelfAttentionImpl : public torch::nn::Module {
 public:
  FusionSelfAttentionImpl(int width, int heads, bool causal);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear Wqkv{nullptr}, out_proj{nullptr};
  LayerNorm32 q_ln{nullptr}, k_ln{nullptr};

 private:
  int heads_;
  bool causal_;
};
TORCH_MODULE(FusionSelfAttention);

class FusionCrossAttentionImpl : public torch::nn::Module {
 public:
  FusionCrossAttentionImpl(int width, int heads, int head_dim);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);
  LayerNorm32 norm{nullptr}, norm_context{nullptr};
  torch::nn::Linear to_q{nullptr}, to_kv{nullptr};
  torch::Tensor null_kv;             // (2, head_dim), shared by all heads
  torch::nn::Sequential to_out{nullptr};  // Linear(heads*head_dim -> width), LayerNorm

 private:
  int heads_, head_dim_;
};
TORCH_MODULE(FusionCrossAttention);

class FusionModuleImpl : public torch::nn::Module {
 public:
  FusionModuleImpl(int width, const FusionConfig& config);
  // content: (B, L, width); queries: (B, Q, width) -> (B, L, width)
  torch::Tensor forward(const torch::Tensor& content, const torch::Tensor& queries);
  FusionSelfAttention mha{nullptr};
  FusionCrossAttention ca{nullptr};
  torch::nn::Sequential ffn{nullptr};

 private:
  FusionConfig config_;
};
TORCH_MODULE(FusionModule);

// Linear(width -> classes) whose weight is L2-normalised along dim 0 (each input
// feature's column across classes) before every forward and written back into
// the parameter, as the reference's Classifier (a projection after each
// optimizer step; the gradient is taken at the normalised weight); the feature
// is not normalised.
class NormalizedClassifierImpl : public torch::nn::Module {
 public:
  NormalizedClassifierImpl(int width, int classes);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear layer{nullptr};
};
TORCH_MODULE(NormalizedClassifier);

// Cue map generator: Conv3x3(width -> hidden) - ReLU - Conv3x3(hidden -> 3) on the patch grid.
class CueGeneratorImpl : public torch::nn::Module {
 public:
  CueGeneratorImpl(int width, int hidden);
  torch::Tensor forward(const torch::Tensor& grid);  // (B, width, h, w) -> (B, 3, h, w)
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(CueGenerator);

}  // namespace instructflip
