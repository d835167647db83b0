// Dynamic loss scaling for fp16 (as torch.cuda.amp.GradScaler): the loss is
// multiplied by `scale` before backward; gradients are unscaled before the
// optimizer step; a step whose gradients hold inf/nan is skipped and the scale
// backs off, and after `growth_interval` good steps in a row it grows.
// The inf/nan verdict must be the same on every rank: the trainer all-reduces
// it before Update().
#pragma once

#include <cstdint>
#include <vector>

#include "dataio/base/torch_compat.h"

namespace instructflip {

struct LossScalerOptions {
  double initial_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(LossScalerOptions options = {});
  torch::Tensor Scale(const torch::Tensor& loss) const { return loss * scale_; }
  // Divides every defined gradient by the scale; true if any is inf/nan.
  bool UnscaleAndCheck(const std::vector<torch::Tensor>& parameters) const;
  // After the (possibly skipped) step: back off on overflow, grow after a run of good steps.
  void Update(bool found_inf);

  double scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  // For checkpoints.
  void Restore(double scale, int64_t good_steps);

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace instructflip
