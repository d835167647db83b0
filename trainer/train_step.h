// One optimizer step of InstructFLIP on one rank, the heart of training, read
// top to bottom in train_step.cc:
//   1. Sample    the accumulation window's micro-batches (the loader's wait)
//   2. Inputs    questions, targets and cue noise per micro-batch; the global
//                batch's answer tokens counted in one all-reduce (collective 1),
//                so the LM losses are token means over the global batch
//   3. Forward   under autocast (bf16/fp16) or fp32; loss / accumulation
//   4. Backward  gradient buckets all-reduced during backward (last micro-step);
//                the reducer's wait after backward is the exposed communication
//   5. Update    one all-reduce of [found inf, loss, stop vote] (collective 2),
//                then unscale/skip (fp16), clipping, OneCycle lr/beta1, AdamW
// Each phase is timed on the host (on a GPU, asynchronous work is charged to
// the phase that waits for it). Trainer::Run is the loop around it (log,
// checkpoint, stop); `bench step` times this same step.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataio/base/choices.h"
#include "dataio/loader.h"
#include "dist/communicator.h"
#include "dist/reducer.h"
#include "model/instruct_flip.h"
#include "model/instruction_batch.h"
#include "trainer/loss_scaler.h"
#include "trainer/one_cycle.h"

namespace instructflip {

// How a training batch becomes model inputs, fixed for a run.
struct InputRules {
  StyleQuestionRule style_question = StyleQuestionRule::kLabelBlind;
  int style_questions = kNumStyleQuestions;  // the pool drawn from (data.style_questions)
  uint64_t seed = 2;        // cue noise and (through the batcher) question draws
  int64_t store_size = 0;   // samples in the store: per-epoch question keys
};

// A micro-batch of a training epoch (the epoch keys its questions and noise).
struct TrainingBatch {
  Batch batch;
  int64_t epoch = 0;
};

// The model's inputs and targets of a training batch: the style question of
// each sample under `rules`, its answers and classes, and cue noise keyed by
// (seed, epoch, sample) so a global batch split over any ranks gets the same.
InstructFlipExample MakeModelInputs(const TrainingBatch& batch, InstructionBatcher& batcher,
                                    const ModelConfig& config, const InputRules& rules);

// Per-phase host seconds and the step's results.
struct StepStats {
  double sample_s = 0, inputs_s = 0, forward_s = 0, backward_s = 0, update_s = 0;
  double exposed_communication_s = 0;  // the reducer's wait after backward
  double total_s = 0;
  double loss = 0;                     // mean total loss over ranks and micro-steps
  std::map<std::string, double> loss_terms;  // this rank's, averaged over the window
  double grad_norm = 0;
  ScheduleValues schedule;
  bool skipped = false;                // fp16: inf/nan gradients on some rank
  bool diverged = false;               // fp32/bf16: the loss or gradient norm is not finite (no update)
  bool stop = false;                   // some rank was asked to stop: all stop after this step
};

// The training precisions by name (the autocast dtype; fp32: no autocast).
// Configurations name them; launch/ parses them once.
inline const Choices<torch::ScalarType> kPrecisions{
    {"fp32", torch::kFloat32}, {"bf16", torch::kBFloat16}, {"fp16", torch::kFloat16}};

struct TrainStepOptions {
  int accumulation = 1;
  torch::ScalarType precision = torch::kFloat32;
  double clip_grad_norm = 0;
};

class TrainStep {
 public:
  // Everything is borrowed and must outlive the step.
  TrainStep(InstructFlip model, const std::vector<torch::Tensor>& parameters, torch::optim::AdamW& optimizer,
            GradientReducer& reducer, DynamicLossScaler& scaler, Communicator* communicator,
            InstructionBatcher& batcher, InputRules rules, TrainStepOptions options);

  // One optimizer step at `schedule`; `next` yields the micro-batches;
  // `stop_requested`: this rank's vote to stop after this step.
  StepStats Run(const std::function<TrainingBatch()>& next, const ScheduleValues& schedule, bool stop_requested);

 private:
  InstructFlip model_;
  const std::vector<torch::Tensor>& parameters_;
  torch::optim::AdamW& optimizer_;
  GradientReducer& reducer_;
  DynamicLossScaler& scaler_;
  Communicator* communicator_;
  InstructionBatcher& batcher_;
  InputRules rules_;
  TrainStepOptions options_;
  torch::Device device_;
};

}  // namespace instructflip
