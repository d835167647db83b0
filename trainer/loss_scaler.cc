#include "trainer/loss_scaler.h"

#include "dataio/base/check.h"

namespace instructflip {

DynamicLossScaler::DynamicLossScaler(LossScalerOptions options) : options_(options), scale_(options.initial_scale) {
  IF_REQUIRE(options.initial_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
                 options.backoff_factor < 1 && options.growth_interval >= 1,
             "loss scaler: need initial_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1");
}

bool DynamicLossScaler::UnscaleAndCheck(const std::vector<torch::Tensor>& parameters) const {
  torch::NoGradGuard no_grad;
  // One host read for all parameters: on a GPU each read is a device sync.
  std::vector<torch::Tensor> finite;
  for (const torch::Tensor& p : parameters) {
    if (!p.grad().defined()) continue;
    torch::Tensor grad = p.mutable_grad();
    grad.div_(scale_);
    finite.push_back(torch::isfinite(grad).all());
  }
  return !finite.empty() && !torch::stack(finite).all().item<bool>();
}

void DynamicLossScaler::Update(bool found_inf) {
  if (found_inf) {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    return;
  }
  if (++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
}

void DynamicLossScaler::Restore(double scale, int64_t good_steps) {
  IF_REQUIRE(scale > 0 && good_steps >= 0, "checkpoint: invalid loss scaler state (scale ", scale, ", good steps ",
             good_steps, ")");
  scale_ = scale;
  good_steps_ = good_steps;
}

}  // namespace instructflip
