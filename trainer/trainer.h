// The training loop of InstructFLIP on one rank of a job (a single process is
// a job of one): resume or start, then TrainStep (train_step.h: sample ->
// inputs -> forward -> backward with overlapped all-reduce -> update) step
// after step, logging, checkpointing every `checkpoint_every` steps and at the
// end, and stopping together when any rank is signalled. Run("auto") resumes
// from the newest complete checkpoint with the same global batch and the same
// global data order, even on another world size. With dropout off, results do
// not depend on the split of the global batch over ranks and micro-steps (cue
// noise is keyed by sample; LM losses are token means over the global batch);
// the reference (DDP) averages per-rank token means instead, which weights
// ranks by luck of answer lengths.
#pragma once

#include <atomic>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataio/loader.h"
#include "dist/communicator.h"
#include "dist/reducer.h"
#include "model/build.h"
#include "model/instruction_batch.h"
#include "trainer/loss_scaler.h"
#include "trainer/one_cycle.h"
#include "trainer/optimizer.h"
#include "trainer/train_step.h"

namespace instructflip {

class TensorBoardWriter;

struct TrainerOptions {
  ModelConfig model;
  torch::Device device = torch::kCPU;      // this rank's device (dist/device.h picks it)
  std::string store;                       // meta-domain store directory
  std::vector<std::string> train_domains;  // empty: every domain
  // How each sample's style question is picked (model/instructions.h).
  StyleQuestionRule style_question = StyleQuestionRule::kLabelBlind;
  // Training draws from the first N of illumination, environment, camera
  // quality (the reference's num_style_prompt ablation; 3 = all).
  int style_questions = kNumStyleQuestions;
  // Spoof types trained on (the reference's category_ab_mode ablation);
  // empty: every sample. Applies to the validation hold-out too.
  std::vector<int> spoof_types;
  SamplingMode sampling = SamplingMode::kBalanced;
  int64_t epoch_size = 0;                  // samples per epoch (0: eligible samples)
  // Videos of the training domains held out for validation (threshold and
  // checkpoint choice without target data); never trained on.
  double validation_fraction = 0;
  uint64_t validation_seed = 1;
  int loader_threads = 2;
  int prefetch = 4;
  int batch_per_rank = 24;
  int accumulation = 10;                   // micro-steps per optimizer step
  int64_t total_steps = 100;               // optimizer steps (the OneCycle length)
  torch::ScalarType precision = torch::kFloat32;  // kPrecisions (trainer/train_step.h)
  OptimizerOptions optimizer;
  OneCycleOptions schedule;
  LossScalerOptions scaler;
  double clip_grad_norm = 0;               // 0: none (the paper)
  int64_t checkpoint_every = 0;            // 0: only at the end
  int keep_last = 3;
  int64_t log_every = 10;
  uint64_t seed = 2;
  ReducerOptions reducer;
  std::string resolved_config;             // the run's configuration text, saved with checkpoints
  // Where T5 warm-ups are kept for reuse (model/t5_warmup.h); empty: not kept.
  std::string warmup_cache_dir;
  // Set asynchronously (SIGUSR1/SIGTERM handler) to stop at the next step
  // boundary: all ranks agree on the step, checkpoint and return.
  const std::atomic<bool>* stop_requested = nullptr;
  // Called with true when start-up (model, store, resume or T5 warm-up) is
  // over and the step loop, which acts on stop_requested, begins (every rank
  // there: after a barrier), and with false once its final checkpoint is
  // written. Outside the loop the signal handler cannot wait for a step
  // boundary (launch/job_runtime.h).
  std::function<void(bool)> in_step_loop;
  // Called on every rank once a resume succeeded and the training data opened
  // (domains, split, spoof types), before a fresh run's T5 warm-up: the
  // launcher records the run's configuration only then, so a refused launch
  // leaves the directory as it was.
  std::function<void()> started;
  // Crash tests only: CheckpointStore::fault_point of every checkpoint write.
  std::function<void(int64_t step, const std::string& point)> checkpoint_fault_point;
};

struct TrainResult {
  int64_t steps = 0;        // optimizer steps done in total (including before a resume)
  double last_loss = 0;     // mean total loss of the last step
  int64_t skipped_steps = 0;  // fp16 steps skipped for inf/nan
  bool interrupted = false;   // stopped by stop_requested (checkpoint written)
};

// Rank 0's record of the steps: the console line, RUN/metrics.jsonl (with
// per-phase seconds) and TensorBoard scalars. Each session (a start or a
// resume) first marks where it starts, in both: steps from there on that an
// earlier, killed session logged are stale (metrics.jsonl: a
// {"session_start": STEP} record; TensorBoard: a SessionLog START), and
// records the configuration (TensorBoard text) and the hyper-parameters.
class TrainingLog {
 public:
  TrainingLog(const std::string& run_dir, int64_t first_step, const TrainerOptions& options);
  ~TrainingLog();
  void Write(int64_t step, int64_t total_steps, const StepStats& stats, double global_batch, double loss_scale,
             double eta_s);

 private:
  std::ofstream metrics_;
  std::unique_ptr<TensorBoardWriter> events_;
};

class Trainer {
 public:
  Trainer(TrainerOptions options, Communicator* communicator, std::string run_dir);
  ~Trainer();

  // resume: "" starts fresh, "auto" takes the newest complete checkpoint (fresh
  // if none), anything else is a checkpoint directory. Stops after
  // `stop_after` total steps if >= 0 (tests: a run cut short).
  TrainResult Run(const std::string& resume, int64_t stop_after = -1);

  InstructFlip& model() { return built_.model; }
  const std::vector<torch::Tensor>& parameters() const { return parameters_; }

 private:
  bool ResumeIfAny(const std::string& resume);  // true: resumed from a checkpoint
  void WarmUpT5();
  void Resume(const std::string& directory);
  void SaveCheckpoint();
  LoaderOptions TrainingLoaderOptions() const;

  TrainerOptions options_;
  Communicator* communicator_;
  std::string run_dir_;
  BuiltModel built_;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<InstructionBatcher> batcher_;
  std::shared_ptr<const Store> store_;
  DynamicLossScaler scaler_;
  int64_t step_ = 0;
  LoaderState loader_state_;
};

}  // namespace instructflip
