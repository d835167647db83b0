#include "model/attention.h"

#include <cmath>

namespace instructflip {

torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& additive_mask, double scale, double dropout, bool allow_fused) {
  const int64_t head_dim = q.size(-1);
  // The fused path has its own dropout RNG stream; with dropout the plain path
  // keeps results reproducible from torch's generator state.
  if (allow_fused && dropout == 0.0) {
    // The fused kernels scale by 1/sqrt(D); fold any other scale into q.
    const double correction = scale * std::sqrt(static_cast<double>(head_dim));
    const torch::Tensor q_scaled = std::abs(correction - 1.0) < 1e-12 ? q : q * correction;
    torch::Tensor mask = additive_mask.defined() ? additive_mask.to(q.scalar_type()) : additive_mask;
    if (auto fused = compat::FusedAttention(q_scaled, k, v, mask)) return *fused;
  }
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32) * scale;
  if (additive_mask.defined()) scores = scores + additive_mask.to(torch::kFloat32);
  torch::Tensor probabilities = torch::softmax(scores, -1).to(v.scalar_type());
  if (dropout > 0.0) probabilities = torch::dropout(probabilities, dropout, /*train=*/true);
  return torch::matmul(probabilities, v);
}

torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads) {
  const int64_t B = x.size(0), L = x.size(1);
  return x.view({B, L, heads, x.size(2) / heads}).transpose(1, 2);
}

torch::Tensor MergeHeads(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), L = x.size(2), D = x.size(3);
  return x.transpose(1, 2).reshape({B, L, H * D});
}

torch::Tensor PaddingMask(const torch::Tensor& keep, torch::ScalarType dtype) {
  const double lowest = dtype == torch::kFloat16 ? -65504.0 : -1e9;
  return ((1.0 - keep.to(torch::kFloat32)) * lowest).to(dtype).unsqueeze(1).unsqueeze(2);
}

}  // namespace instructflip
