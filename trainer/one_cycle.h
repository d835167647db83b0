// PyTorch's OneCycleLR (two phases, cosine annealing, momentum cycling), as the
// reference trains with it: max_lr 5e-6, pct_start 0.1, div_factor 10,
// final_div_factor 1, and AdamW's beta1 cycled between 0.95 and 0.85.
//
// At optimizer step k (0-based) of `total_steps`:
//   phase 1, k <= p1 = pct_start * total - 1:  x = k / p1
//       lr = max + (initial - max) / 2 * (cos(pi x) + 1), initial = max_lr / div_factor
//       beta1 = base_m + (max_m - base_m) / 2 * (cos(pi x) + 1)
//   phase 2:  x = (k - p1) / (total - 1 - p1)
//       lr = min + (max - min) / 2 * (cos(pi x) + 1), min = initial / final_div_factor
//       beta1 = max_m + (base_m - max_m) / 2 * (cos(pi x) + 1)
// (torch/optim/lr_scheduler.py, OneCycleLR.get_lr with three_phase=False.)
#pragma once

#include <cstdint>

namespace instructflip {

struct OneCycleOptions {
  double max_lr = 5e-6;
  double pct_start = 0.1;
  double div_factor = 10;
  double final_div_factor = 1;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  bool cycle_momentum = true;
};

struct ScheduleValues {
  double lr = 0;
  double beta1 = 0;
};

class OneCycleSchedule {
 public:
  OneCycleSchedule(OneCycleOptions options, int64_t total_steps);
  // Values for optimizer step `step` in [0, total_steps); out of range is an error
  // (PyTorch raises too: a resumed run must not step past its schedule).
  ScheduleValues At(int64_t step) const;
  int64_t total_steps() const { return total_steps_; }

 private:
  OneCycleOptions options_;
  int64_t total_steps_;
};

}  // namespace instructflip
