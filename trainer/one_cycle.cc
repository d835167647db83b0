#include "trainer/one_cycle.h"

#include <cmath>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

double CosineAnneal(double start, double end, double fraction) {
  return end + (start - end) / 2.0 * (std::cos(M_PI * fraction) + 1.0);
}

}  // namespace

OneCycleSchedule::OneCycleSchedule(OneCycleOptions options, int64_t total_steps)
    : options_(options), total_steps_(total_steps) {
  IF_REQUIRE(total_steps >= 2, "OneCycle schedule needs at least 2 optimizer steps, got ", total_steps);
  IF_REQUIRE(options.pct_start > 0 && options.pct_start < 1, "schedule.pct_start must be in (0, 1), got ",
             options.pct_start);
  IF_REQUIRE(options.pct_start * total_steps > 1, "schedule.pct_start ", options.pct_start, " x ", total_steps,
             " steps leaves no warm-up phase (PyTorch divides by zero there)");
  IF_REQUIRE(options.max_lr > 0 && options.div_factor > 0 && options.final_div_factor > 0,
             "schedule: max_lr, div_factor and final_div_factor must be > 0");
}

ScheduleValues OneCycleSchedule::At(int64_t step) const {
  IF_REQUIRE(step >= 0 && step < total_steps_, "optimizer step ", step, " is outside the schedule's ",
             total_steps_, " steps");
  const OneCycleOptions& o = options_;
  const double initial = o.max_lr / o.div_factor;
  const double minimum = initial / o.final_div_factor;
  const double phase1_end = o.pct_start * total_steps_ - 1;  // float, as PyTorch
  const double phase2_end = total_steps_ - 1;
  ScheduleValues v;
  if (step <= phase1_end) {
    const double x = static_cast<double>(step) / phase1_end;
    v.lr = CosineAnneal(initial, o.max_lr, x);
    v.beta1 = CosineAnneal(o.max_momentum, o.base_momentum, x);
  } else {
    const double x = (step - phase1_end) / (phase2_end - phase1_end);
    v.lr = CosineAnneal(o.max_lr, minimum, x);
    v.beta1 = CosineAnneal(o.base_momentum, o.max_momentum, x);
  }
  if (!o.cycle_momentum) v.beta1 = 0.9;  // AdamW's own beta1, untouched
  return v;
}

}  // namespace instructflip
