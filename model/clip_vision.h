// CLIP ViT vision tower (ViT-B/16 in the paper): pre-LN transformer with
// QuickGELU, class token and ln_pre/ln_post. Submodule names follow Hugging
// Face's CLIPVisionModel ("embeddings.patch_embedding", "encoder.layers.3.
// self_attn.q_proj", "post_layernorm", ...) so checkpoints map one to one.
//
// Outputs the two views InstructFLIP feeds its Q-Formers:
//   content: post_layernorm over every token           (B, 1 + P, width)
//   style:   per layer, the token-wise mean and std of that layer's output
//            (B, 2 * layers, width), see forward() for the order
#pragma once

#include "dataio/base/torch_compat.h"
#include "model/layer_norm.h"
#include "model/model_config.h"

namespace instructflip {

class CLIPAttentionImpl : public torch::nn::Module {
 public:
  CLIPAttentionImpl(int width, int heads);
  torch::Tensor forward(const torch::Tensor& x);  // (B, L, width)

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int heads_;
};
TORCH_MODULE(CLIPAttention);

class CLIPMlpImpl : public torch::nn::Module {
 public:
  CLIPMlpImpl(int width, int hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(CLIPMlp);

class CLIPEncoderLayerImpl : public torch::nn::Module {
 public:
  CLIPEncoderLayerImpl(const VisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  LayerNorm32 layer_norm1{nullptr}, layer_norm2{nullptr};
  CLIPAttention self_attn{nullptr};
  CLIPMlp mlp{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

class CLIPEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit CLIPEmbeddingsImpl(const VisionConfig& config);
  torch::Tensor forward(const torch::Tensor& images);  // (B, 3, H, W) -> (B, 1 + P, width)
  torch::Tensor class_embedding;                       // (width,)
  torch::nn::Conv2d patch_embedding{nullptr};          // (width, 3, patch, patch), no bias
  torch::nn::Embedding position_embedding{nullptr};    // (1 + P, width)
};
TORCH_MODULE(CLIPEmbeddings);

class CLIPEncoderImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderImpl(const VisionConfig& config);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(CLIPEncoder);

struct VisionFeatures {
  torch::Tensor content;  // (B, 1 + P, width)
  torch::Tensor style;    // (B, 2 * layers, width)
};

class CLIPVisionImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionImpl(const VisionConfig& config);
  VisionFeatures forward(const torch::Tensor& images);

  CLIPEmbeddings embeddings{nullptr};
  LayerNorm32 pre_layrnorm{nullptr};  // sic: Hugging Face's name
  CLIPEncoder encoder{nullptr};
  LayerNorm32 post_layernorm{nullptr};

 private:
  VisionConfig config_;
};
TORCH_MODULE(CLIPVision);

}  // namespace instructflip
