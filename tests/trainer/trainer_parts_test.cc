// The optimizer, schedule and loss scaler against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/loss_scaler.h"
#include "trainer/one_cycle.h"
#include "trainer/optimizer.h"

namespace instructflip {
namespace {

TEST(OneCycle, MatchesPyTorchFormulasComputedByHand) {
  // The reference: max_lr 5e-6, pct_start 0.1, div 10, final div 1, beta1 0.95 -> 0.85 -> 0.95.
  // total 100: phase 1 ends at step 0.1 * 100 - 1 = 9.
  const OneCycleSchedule s(OneCycleOptions{}, 100);
  // step 0: initial lr = 5e-6 / 10, beta1 = max momentum.
  EXPECT_NEAR(s.At(0).lr, 5e-7, 1e-18);
  EXPECT_NEAR(s.At(0).beta1, 0.95, 1e-15);
  // step 3: x = 3/9, cos(pi/3) = 0.5 -> lr = 5e-6 + (5e-7 - 5e-6)/2 * 1.5 = 1.625e-6,
  //         beta1 = 0.85 + (0.95 - 0.85)/2 * 1.5 = 0.925.
  EXPECT_NEAR(s.At(3).lr, 1.625e-6, 1e-18);
  EXPECT_NEAR(s.At(3).beta1, 0.925, 1e-15);
  // step 9: the peak.
  EXPECT_NEAR(s.At(9).lr, 5e-6, 1e-18);
  EXPECT_NEAR(s.At(9).beta1, 0.85, 1e-15);
  // step 54: x = (54 - 9) / (99 - 9) = 0.5 -> lr = 5e-7 + 4.5e-6 / 2 = 2.75e-6, beta1 = 0.90.
  EXPECT_NEAR(s.At(54).lr, 2.75e-6, 1e-18);
  EXPECT_NEAR(s.At(54).beta1, 0.90, 1e-15);
  // Last step: min lr = initial / final_div_factor = 5e-7, beta1 back to 0.95.
  EXPECT_NEAR(s.At(99).lr, 5e-7, 1e-18);
  EXPECT_NEAR(s.At(99).beta1, 0.95, 1e-15);
  EXPECT_THROW(s.At(100), std::runtime_error);
  EXPECT_THROW(OneCycleSchedule(OneCycleOptions{}, 5), std::runtime_error);  // 0.1 * 5 - 1 < 0
}

TEST(OneCycle, NonIntegerPhaseBoundaryAsPyTorch) {
  // total 25: phase 1 ends at 1.5 (float): step 1 is in phase 1 (x = 1/1.5), step 2 in phase 2.
  OneCycleOptions o;
  o.max_lr = 1.0;
  o.div_factor = 4;       // initial 0.25
  o.final_div_factor = 5; // min 0.05
  const OneCycleSchedule s(o, 25);
  const double x1 = 1.0 / 1.5;
  EXPECT_NEAR(s.At(1).lr, 1.0 + (0.25 - 1.0) / 2 * (std::cos(M_PI * x1) + 1), 1e-12);
  const double x2 = (2 - 1.5) / (24 - 1.5);
  EXPECT_NEAR(s.At(2).lr, 0.05 + (1.0 - 0.05) / 2 * (std::cos(M_PI * x2) + 1), 1e-12);
}

// The reference's one parameter group decays every parameter; LAVIS's rule
// (`optimizer.decay: matrices`) leaves biases and norms undecayed.
TEST(AdamW, WeightDecayReachesEveryParameterOrOnlyMatricesAndScheduleApplies) {
  for (const bool all : {true, false}) {
    torch::Tensor weight = torch::ones({2, 2}, torch::requires_grad());
    torch::Tensor bias = torch::ones({2}, torch::requires_grad());
    OptimizerOptions options;
    options.weight_decay = 0.5;
    options.decay_all_parameters = all;
    auto adam = MakeAdamW({weight, bias}, options);
    ApplySchedule(*adam, {0.1, 0.8});
    weight.mutable_grad() = torch::zeros_like(weight);
    bias.mutable_grad() = torch::zeros_like(bias);
    adam->step();
    // Zero gradient: only decoupled decay moves a weight, w *= (1 - lr * wd) = 0.95.
    EXPECT_TRUE(torch::allclose(weight, torch::full({2, 2}, 0.95f)));
    EXPECT_TRUE(torch::allclose(bias, torch::full({2}, all ? 0.95f : 1.0f))) << "decay all: " << all;
    EXPECT_EQ(adam->param_groups().size(), all ? 1u : 2u);
    for (auto& group : adam->param_groups()) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      EXPECT_DOUBLE_EQ(o.lr(), 0.1);
      EXPECT_DOUBLE_EQ(std::get<0>(o.betas()), 0.8);
      EXPECT_DOUBLE_EQ(std::get<1>(o.betas()), 0.999);
    }
  }
}

TEST(LossScaler, SkipsAnInfStepBacksOffAndGrowsAfterGoodSteps) {
  LossScalerOptions o;
  o.initial_scale = 1024;
  o.growth_interval = 3;
  DynamicLossScaler scaler(o);
  torch::Tensor p = torch::zeros({3}, torch::requires_grad());
  EXPECT_DOUBLE_EQ(scaler.Scale(torch::tensor(2.0)).item<double>(), 2048.0);
  // A gradient with inf: detected, scale halves, good-step count resets.
  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity(), 3.0f});
  EXPECT_TRUE(scaler.UnscaleAndCheck({p}));
  scaler.Update(true);
  EXPECT_DOUBLE_EQ(scaler.scale(), 512);
  EXPECT_EQ(scaler.good_steps(), 0);
  // Finite gradients are unscaled exactly; three good steps grow the scale.
  for (int i = 0; i < 3; ++i) {
    p.mutable_grad() = torch::full({3}, 512.0f);
    EXPECT_FALSE(scaler.UnscaleAndCheck({p}));
    EXPECT_TRUE(torch::equal(p.grad(), torch::ones({3})));
    scaler.Update(false);
  }
  EXPECT_DOUBLE_EQ(scaler.scale(), 1024);
  scaler.Restore(8, 1);
  EXPECT_DOUBLE_EQ(scaler.scale(), 8);
  EXPECT_THROW(scaler.Restore(-1, 0), std::runtime_error);
}

}  // namespace
}  // namespace instructflip
