#include "model/clip_vision.h"

#include "dataio/base/check.h"
#include "model/attention.h"

namespace instructflip {

namespace nn = torch::nn;

CLIPAttentionImpl::CLIPAttentionImpl(int width, int heads) : heads_(heads) {
  q_proj = register_module("q_proj", nn::Linear(width, width));
  k_proj = register_module("k_proj", nn::Linear(width, width));
  v_proj = register_module("v_proj", nn::Linear(width, width));
  out_proj = register_module("out_proj", nn::Linear(width, width));
}

torch::Tensor CLIPAttentionImpl::forward(const torch::Tensor& x) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(x.size(-1) / heads_));
  torch::Tensor out = Attention(SplitHeads(q_proj(x), heads_), SplitHeads(k_proj(x), heads_),
                                SplitHeads(v_proj(x), heads_), torch::Tensor(), scale);
  return out_proj(MergeHeads(out));
}

CLIPMlpImpl::CLIPMlpImpl(int width, int hidden) {
  fc1 = register_module("fc1", nn::Linear(width, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, width));
}

torch::Tensor CLIPMlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = fc1(x);
  return fc2(h * torch::sigmoid(1.702 * h));  // QuickGELU, as OpenAI CLIP
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const VisionConfig& c) {
  layer_norm1 = register_module("layer_norm1", LayerNorm32(c.width, c.layer_norm_eps));
  self_attn = register_module("self_attn", CLIPAttention(c.width, c.heads));
  layer_norm2 = register_module("layer_norm2", LayerNorm32(c.width, c.layer_norm_eps));
  mlp = register_module("mlp", CLIPMlp(c.width, 4 * c.width));
}

torch::Tensor CLIPEncoderLayerImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x + self_attn(layer_norm1(x));
  return h + mlp(layer_norm2(h));
}

CLIPEmbeddingsImpl::CLIPEmbeddingsImpl(const VisionConfig& c) {
  const int patches = (c.image_size / c.patch_size) * (c.image_size / c.patch_size);
  class_embedding = register_parameter("class_embedding", torch::randn({c.width}) * 0.02);
  patch_embedding = register_module(
      "patch_embedding", nn::Conv2d(nn::Conv2dOptions(3, c.width, c.patch_size).stride(c.patch_size).bias(false)));
  position_embedding = register_module("position_embedding", nn::Embedding(patches + 1, c.width));
  nn::init::normal_(position_embedding->weight, 0.0, 0.01);
}

torch::Tensor CLIPEmbeddingsImpl::forward(const torch::Tensor& images) {
  const int64_t B = images.size(0);
  torch::Tensor patches = patch_embedding(images.to(patch_embedding->weight.scalar_type()));
  patches = patches.flatten(2).transpose(1, 2);                           // (B, P, width)
  torch::Tensor cls = class_embedding.to(patches.scalar_type()).expand({B, 1, -1});
  return torch::cat({cls, patches}, 1) + position_embedding->weight.to(patches.scalar_type());
}

CLIPEncoderImpl::CLIPEncoderImpl(const VisionConfig& c) {
  layers = register_module("layers", nn::ModuleList());
  for (int i = 0; i < c.layers; ++i) layers->push_back(CLIPEncoderLayer(c));
}

CLIPVisionImpl::CLIPVisionImpl(const VisionConfig& c) : config_(c) {
  IF_REQUIRE(c.image_size % c.patch_size == 0, "vision.image_size ", c.image_size,
             " is not a multiple of vision.patch_size ", c.patch_size);
  IF_REQUIRE(c.width % c.heads == 0, "vision.width ", c.width, " is not a multiple of vision.heads ", c.heads);
  embeddings = register_module("embeddings", CLIPEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm", LayerNorm32(c.width, c.layer_norm_eps));
  encoder = register_module("encoder", CLIPEncoder(c));
  post_layernorm = register_module("post_layernorm", LayerNorm32(c.width, c.layer_norm_eps));
}

VisionFeatures CLIPVisionImpl::forward(const torch::Tensor& images) {
  IF_REQUIRE(images.dim() == 4 && images.size(1) == 3 && images.size(2) == config_.image_size &&
                 images.size(3) == config_.image_size,
             "vision input must be (B, 3, ", config_.image_size, ", ", config_.image_size, "), got ",
             images.sizes());
  torch::Tensor x = pre_layrnorm(embeddings(images));
  std::vector<torch::Tensor> statistics;  // mean_1, std_1, mean_2, std_2, ...
  for (const auto& layer : *encoder->layers) {
    x = layer->as<CLIPEncoderLayer>()->forward(x);
    // Token-wise statistics in fp32: a bf16 variance of 197 tokens loses the style signal.
    const torch::Tensor x32 = x.to(torch::kFloat32);
    statistics.push_back(x32.mean(1));
    statistics.push_back(x32.std(1, /*unbiased=*/true));
  }
  VisionFeatures out;
  out.content = post_layernorm(x);
  out.style = torch::stack(statistics, 1).to(x.scalar_type());
  return out;
}

}  // namespace instructflip
