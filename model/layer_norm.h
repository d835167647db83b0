// LayerNorm computed in fp32 whatever the input dtype (as OpenAI CLIP's
// LayerNorm subclass): under bf16/fp16 autocast the statistics stay exact and
// the output returns in the input's dtype. Parameters "weight" and "bias" as
// torch::nn::LayerNorm, so checkpoints load unchanged.
#pragma once

#include "dataio/base/torch_compat.h"

namespace instructflip {

class LayerNorm32Impl : public torch::nn::Module {
 public:
  explicit LayerNorm32Impl(int64_t width, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  int64_t width_;
  double eps_;
};
TORCH_MODULE(LayerNorm32);

}  // namespace instructflip
