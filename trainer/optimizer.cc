#include "trainer/optimizer.h"

namespace instructflip {

std::unique_ptr<torch::optim::AdamW> MakeAdamW(const std::vector<torch::Tensor>& parameters,
                                               const OptimizerOptions& options) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const torch::Tensor& p : parameters)
    (options.decay_all_parameters || p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto group_options = [&](double weight_decay) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(/*lr=*/1e-3);
    o->betas({0.9, options.beta2}).eps(options.eps).weight_decay(weight_decay);
    return o;
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, group_options(options.weight_decay));
  if (!no_decay.empty()) groups.emplace_back(no_decay, group_options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(1e-3));
}

void ApplySchedule(torch::optim::AdamW& optimizer, const ScheduleValues& values) {
  for (auto& group : optimizer.param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    o.lr(values.lr);
    o.betas({values.beta1, std::get<1>(o.betas())});
  }
}

}  // namespace instructflip
