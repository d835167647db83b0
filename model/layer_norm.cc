#include "model/layer_norm.h"

namespace instructflip {

LayerNorm32Impl::LayerNorm32Impl(int64_t width, double eps) : width_(width), eps_(eps) {
  weight = register_parameter("weight", torch::ones({width}));
  bias = register_parameter("bias", torch::zeros({width}));
}

torch::Tensor LayerNorm32Impl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x.to(torch::kFloat32), {width_}, weight.to(torch::kFloat32), bias.to(torch::kFloat32),
                           eps_)
      .to(x.scalar_type());
}

}  // namespace instructflip
