// AdamW as the reference configures it (lr and beta1 then driven by the
// OneCycle schedule, weight decay 1e-7 on every trainable parameter, one
// group). `decay_all_parameters = false` is LAVIS's rule instead: decay for
// matrices and convolution kernels, none for biases, norms and other
// one-dimensional parameters (class embedding, query tokens are 3-D: decayed).
#pragma once

#include <memory>
#include <vector>

#include "dataio/base/choices.h"
#include "dataio/base/torch_compat.h"
#include "trainer/one_cycle.h"

namespace instructflip {

// optimizer.decay: which parameters weight decay applies to.
inline const Choices<bool> kDecayRules{{"all", true} /* the reference */, {"matrices", false} /* LAVIS */};

struct OptimizerOptions {
  double weight_decay = 1e-7;
  bool decay_all_parameters = true;  // optimizer.decay, kDecayRules
  double beta2 = 0.999;
  double eps = 1e-8;
};

std::unique_ptr<torch::optim::AdamW> MakeAdamW(const std::vector<torch::Tensor>& parameters,
                                               const OptimizerOptions& options);
// Applies the schedule's lr and beta1 to every group.
void ApplySchedule(torch::optim::AdamW& optimizer, const ScheduleValues& values);

}  // namespace instructflip
