#include "trainer/train_step.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "dataio/base/check.h"
#include "dataio/base/rng.h"
#include "trainer/optimizer.h"

namespace instructflip {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Stream tag of the cue noise draws.
constexpr uint64_t kCueNoiseStream = 0x637565;  // "cue"

// The LM losses become token sums / (tokens of the global batch): each
// micro-step's loss is later divided by the accumulation and averaged over
// ranks, so the normaliser is scaled down by both (undoing them), and a rank
// whose batch has longer answers weighs exactly as much as its tokens.
void NormalizeLanguageModelLosses(const torch::Tensor& global_tokens, double parts, InstructFlipTargets* targets) {
  targets->content_lm_tokens = std::max(1.0, global_tokens[0].item<double>()) / parts;
  targets->style_lm_tokens = std::max(1.0, global_tokens[1].item<double>()) / parts;
}

}  // namespace

InstructFlipExample MakeModelInputs(const TrainingBatch& training, InstructionBatcher& batcher,
                                    const ModelConfig& c, const InputRules& rules) {
  const Batch& batch = training.batch;
  // Question keys differ per epoch, so a sample is asked other questions in another epoch.
  SampleTexts texts{batch.label,       batch.spoof_type,     batch.illumination,
                    batch.environment, batch.camera_quality, batch.sample_index + training.epoch * rules.store_size};
  InstructFlipExample example = batcher.TrainingExample(texts, rules.style_question, rules.style_questions);
  example.inputs.images = batch.images;
  example.inputs.ssl_views = batch.ssl_views;  // defined when the loader makes them (loss.ssl > 0)
  if (c.cue_noise_weight > 0 && (c.variant == Variant::kFull || c.variant == Variant::kNoLlm)) {
    const int64_t grid = c.vision.image_size / c.vision.patch_size, B = batch.label.size(0);
    torch::Tensor noise = torch::empty({B, grid * grid, c.vision.width});
    const torch::Tensor samples = batch.sample_index.contiguous();
    for (int64_t j = 0; j < B; ++j) {
      const uint64_t key = HashKeys({rules.seed, static_cast<uint64_t>(training.epoch),
                                     static_cast<uint64_t>(samples.data_ptr<int64_t>()[j]), kCueNoiseStream});
      at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(key);
      noise[j].copy_(torch::randn({grid * grid, c.vision.width}, generator, torch::TensorOptions()));
    }
    example.inputs.cue_noise = noise;
  }
  return example;
}

TrainStep::TrainStep(InstructFlip model, const std::vector<torch::Tensor>& parameters,
                     torch::optim::AdamW& optimizer, GradientReducer& reducer, DynamicLossScaler& scaler,
                     Communicator* communicator, InstructionBatcher& batcher, InputRules rules,
                     TrainStepOptions options)
    : model_(std::move(model)),
      parameters_(parameters),
      optimizer_(optimizer),
      reducer_(reducer),
      scaler_(scaler),
      communicator_(communicator),
      batcher_(batcher),
      rules_(rules),
      options_(options),
      device_(parameters.front().device()) {
  IF_REQUIRE(options_.accumulation >= 1, "accumulation must be >= 1, got ", options_.accumulation);
}

StepStats TrainStep::Run(const std::function<TrainingBatch()>& next, const ScheduleValues& schedule,
                         bool stop_requested) {
  const auto step_start = Clock::now();
  const int A = options_.accumulation;
  const bool fp16 = options_.precision == torch::kFloat16;
  StepStats stats;
  stats.schedule = schedule;

  // 1. Sample the whole accumulation window first: step 2 needs every
  //    micro-batch's answer tokens before the first forward.
  auto start = Clock::now();
  std::vector<TrainingBatch> batches;
  for (int micro = 0; micro < A; ++micro) batches.push_back(next());
  stats.sample_s = SecondsSince(start);

  // 2. Inputs on the device; the global batch's answer tokens (collective 1).
  //    The host images stay referenced until this step has synced with the
  //    device (grad norm, step 5): the loader reuses a pinned buffer as soon as
  //    nothing holds it, and the copy to the GPU is asynchronous.
  start = Clock::now();
  std::vector<InstructFlipExample> window;
  torch::Tensor tokens = torch::zeros({2}, torch::kFloat64);
  for (const TrainingBatch& batch : batches) {
    const InstructFlipExample example = MakeModelInputs(batch, batcher_, model_->config(), rules_);
    tokens[0] += example.targets.content_answer_t5.ne(-100).sum().item<double>();  // on the host
    tokens[1] += example.targets.style_answer_t5.ne(-100).sum().item<double>();
    window.push_back(ToDevice(example, device_));
  }
  communicator_->AllReduce(tokens, ReduceOp::kSum);
  for (InstructFlipExample& example : window)
    NormalizeLanguageModelLosses(tokens, double(A) * communicator_->size(), &example.targets);
  stats.inputs_s = SecondsSince(start);

  // This rank's loss and its terms over the window, kept on the device so a
  // micro-step does not wait for the GPU.
  const torch::TensorOptions f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device_);
  torch::Tensor loss_sum = torch::zeros({}, f64);
  std::map<std::string, torch::Tensor> terms;
  for (int micro = 0; micro < A; ++micro) {
    // 3. Forward
    start = Clock::now();
    torch::Tensor loss;
    {
      std::optional<compat::AutocastGuard> autocast;
      if (options_.precision != torch::kFloat32) autocast.emplace(device_, options_.precision);
      const InstructFlipLosses losses = *model_->forward(window[micro].inputs, window[micro].targets).losses;
      loss = losses.total / A;
      for (const auto& [name, term] : {std::pair<const char*, torch::Tensor>{"content_lm", losses.content_lm},
                                       {"style_lm", losses.style_lm},
                                       {"classification", losses.classification},
                                       {"cue", losses.cue},
                                       {"ssl", losses.ssl}})
        if (term.defined()) {
          const torch::Tensor part = term.detach().to(torch::kFloat64) / A;
          terms[name] = terms.count(name) ? terms[name] + part : part;
        }
    }
    stats.forward_s += SecondsSince(start);
    // 4. Backward; the reducer communicates during the last micro-step's.
    start = Clock::now();
    const torch::Tensor backward_from = fp16 ? scaler_.Scale(loss) : loss;
    reducer_.Prepare(/*sync=*/micro == A - 1, backward_from);
    backward_from.backward();
    loss_sum += loss.detach().to(torch::kFloat64);
    stats.backward_s += SecondsSince(start);
  }
  start = Clock::now();
  reducer_.Finalize();
  stats.exposed_communication_s = SecondsSince(start);

  // 5. Update. One collective agrees on the step: skip it if any rank found
  //    inf/nan gradients (fp16), the mean loss, and whether to stop after it.
  start = Clock::now();
  const bool found_inf = fp16 && scaler_.UnscaleAndCheck(parameters_);
  torch::Tensor agreed = torch::stack({torch::tensor(found_inf ? 1.0 : 0.0, torch::kFloat64), loss_sum.cpu(),
                                       torch::tensor(stop_requested ? 1.0 : 0.0, torch::kFloat64)});
  communicator_->AllReduce(agreed, ReduceOp::kSum);
  stats.skipped = agreed[0].item<double>() > 0;
  stats.loss = agreed[1].item<double>() / communicator_->size();
  stats.stop = agreed[2].item<double>() > 0;
  if (fp16) scaler_.Update(stats.skipped);
  std::vector<torch::Tensor> squares;
  for (const torch::Tensor& p : parameters_)
    if (p.grad().defined()) squares.push_back(p.grad().to(torch::kFloat64).pow(2).sum());
  stats.grad_norm = squares.empty() ? 0.0 : std::sqrt(torch::stack(squares).sum().item<double>());
  // Without fp16's scaler a non-finite loss or gradient is divergence, not an
  // overflow to retry: no update, and the caller stops. Both values are agreed
  // (reduced loss, all-reduced gradients), so every rank decides alike.
  stats.diverged = !fp16 && !(std::isfinite(stats.loss) && std::isfinite(stats.grad_norm));
  if (stats.diverged) stats.skipped = true;
  if (options_.clip_grad_norm > 0 && !stats.skipped)
    torch::nn::utils::clip_grad_norm_(parameters_, options_.clip_grad_norm);
  if (!stats.skipped) {
    ApplySchedule(optimizer_, schedule);
    optimizer_.step();
  }
  optimizer_.zero_grad();
  for (const auto& [name, value] : terms) stats.loss_terms[name] = value.item<double>();
  stats.update_s = SecondsSince(start);
  stats.total_s = SecondsSince(step_start);
  return stats;
}

}  // namespace instructflip
