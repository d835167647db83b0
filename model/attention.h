// The one attention function of the model. Every attention layer (CLIP, Q-Former,
// T5, fusion) calls it, so the fused kernels of LibTorch >= 2.0 speed all of
// them up, and one test checks both paths against a reference.
#pragma once

#include "dataio/base/torch_compat.h"

namespace instructflip {

// q: (B, H, Lq, D), k, v: (B, H, Lk, D); additive_mask broadcastable to
// (B, H, Lq, Lk) or undefined; `scale` multiplies q k^T (1/sqrt(D) for most
// layers, 1 for T5); `dropout` on the attention probabilities (pass 0 outside
// training). Softmax runs in fp32 under autocast. `allow_fused` false forces
// the plain formula (tests compare the two).
torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& additive_mask, double scale, double dropout = 0.0,
                        bool allow_fused = true);

// Splits (B, L, H*D) into heads (B, H, L, D) and back.
torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads);
torch::Tensor MergeHeads(const torch::Tensor& x);

// Additive mask (B, 1, 1, L) from a (B, L) keep-mask (1 keep, 0 masked): 0 or a
// large negative value in `dtype`.
torch::Tensor PaddingMask(const torch::Tensor& keep, torch::ScalarType dtype);

}  // namespace instructflip
