#include "model/fusion.h"

#include <cmath>

#include "model/attention.h"

namespace instructflip {

namespace nn = torch::nn;

FusionSelfAttentionImpl::FusionSelfAttentionImpl(int width, int heads, bool causal)
    : heads_(heads), causal_(causal) {
  Wqkv = register_module("Wqkv", nn::Linear(width, 3 * width));
  q_ln = register_module("q_ln", LayerNorm32(width));
  k_ln = register_module("k_ln", LayerNorm32(width));
  out_proj = register_module("out_proj", nn::Linear(width, width));
}

torch::Tensor FusionSelfAttentionImpl::forward(const torch::Tensor& x) {
  const std::vector<torch::Tensor> qkv = Wqkv(x).chunk(3, -1);
  const int64_t L = x.size(1);
  torch::Tensor mask;
  if (causal_)
    mask = torch::triu(torch::full({L, L}, -1e9, torch::TensorOptions().device(x.device())), 1).view({1, 1, L, L});
  const double scale = 1.0 / std::sqrt(static_cast<double>(x.size(-1) / heads_));
  torch::Tensor out = Attention(SplitHeads(q_ln(qkv[0]), heads_), SplitHeads(k_ln(qkv[1]), heads_),
                                SplitHeads(qkv[2].contiguous(), heads_), mask, scale);
  return out_proj(MergeHeads(out));
}

FusionCrossAttentionImpl::FusionCrossAttentionImpl(int width, int heads, int head_dim)
    : heads_(heads), head_dim_(head_dim) {
  const int inner = heads * head_dim;
  norm = register_module("norm", LayerNorm32(width));
  norm_context = register_module("norm_context", LayerNorm32(width));
  null_kv = register_parameter("null_kv", torch::randn({2, head_dim}));
  to_q = register_module("to_q", nn::Linear(nn::LinearOptions(width, inner).bias(false)));
  to_kv = register_module("to_kv", nn::Linear(nn::LinearOptions(width, 2 * inner).bias(false)));
  to_out = register_module("to_out", nn::Sequential(nn::Linear(nn::LinearOptions(inner, width).bias(false)),
                                                    LayerNorm32(width)));
}

torch::Tensor FusionCrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const int64_t B = x.size(0);
  const torch::Tensor q = SplitHeads(to_q(norm(x)), heads_);
  const std::vector<torch::Tensor> kv = to_kv(norm_context(context)).chunk(2, -1);
  // A learned "attend to nothing" slot in front of the keys and values.
  auto with_null = [&](const torch::Tensor& t, int64_t which) {
    const torch::Tensor null = null_kv[which].to(t.scalar_type()).view({1, 1, 1, head_dim_}).expand({B, heads_, 1, head_dim_});
    return torch::cat({null, SplitHeads(t.contiguous(), heads_)}, 2);
  };
  torch::Tensor out = Attention(q, with_null(kv[0], 0), with_null(kv[1], 1), torch::Tensor(),
                                1.0 / std::sqrt(static_cast<double>(head_dim_)));
  return to_out->forward(MergeHeads(out));
}

FusionModuleImpl::FusionModuleImpl(int width, const FusionConfig& c) : config_(c) {
  mha = register_module("mha", FusionSelfAttention(width, c.heads, c.causal_self_attention));
  ca = register_module("ca", FusionCrossAttention(width, c.cross_heads, c.cross_head_dim));
  ffn = register_module("ffn", nn::Sequential(LayerNorm32(width),
                                              nn::Linear(width, c.feed_forward),
                                              nn::Functional([](const torch::Tensor& t) { return torch::gelu(t); }),
                                              nn::Linear(c.feed_forward, width)));
}

torch::Tensor FusionModuleImpl::forward(const torch::Tensor& content, const torch::Tensor& queries) {
  torch::Tensor x = content + mha(content);
  x = x + ca(x, queries);
  torch::Tensor out = torch::dropout(ffn->forward(x), config_.dropout, is_training());
  return config_.feed_forward_residual ? x + out : out;
}

NormalizedClassifierImpl::NormalizedClassifierImpl(int width, int classes) {
  layer = register_module("layer", nn::Linear(width, classes));
}

torch::Tensor NormalizedClassifierImpl::forward(const torch::Tensor& x) {
  {
    // Renormalise only when an update moved the columns off unit length: a
    // second normalisation of unit columns changes the last bits, which would
    // make two identical forwards differ. Decided on the device (no host sync).
    torch::NoGradGuard no_grad;
    const torch::Tensor norms = layer->weight.norm(2, 0);
    const torch::Tensor moved = (norms - 1).abs().max() > 1e-6;
    layer->weight.copy_(torch::where(moved, layer->weight / norms.clamp_min(1e-12), layer->weight));
  }
  return layer(x);
}

CueGeneratorImpl::CueGeneratorImpl(int width, int hidden) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(width, hidden, 3).padding(1)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(hidden, 3, 3).padding(1)));
}

torch::Tensor CueGeneratorImpl::forward(const torch::Tensor& grid) {
  return conv2(torch::relu(conv1(grid)));
}

}  // namespace instructflip
