#include "trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "dataio/check.h"
#include "dataio/file_util.h"
#include "dataio/rng.h"
#include "model/t5_warmup.h"
#include "model/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/event_writer.h"

namespace instructflip {
namespace {

torch::ScalarType ParsePrecisionName(const std::string& text) {
  if (text == "fp32") return torch::kFloat32;
  if (text == "bf16") return torch::kBFloat16;
  if (text == "fp16") return torch::kFloat16;
  IF_FAIL("precision must be fp32, bf16 or fp16, got '", text, "'");
}

// A rank's generator state on `device` (CPU, or its GPU's where it has one).
std::string RankFile(int rank, const torch::Device& device) {
  char name[40];
  std::snprintf(name, sizeof(name), device.is_cuda() ? "rank-%05d.cuda.rng" : "rank-%05d.rng", rank);
  return name;
}

// The devices whose global generators a rank checkpoints.
std::vector<torch::Device> RngDevices(const torch::Device& device) {
  if (device.is_cuda()) return {torch::kCPU, device};
  return {torch::kCPU};
}

}  // namespace

Trainer::Trainer(TrainerOptions options, Communicator* communicator, std::string run_dir)
    : options_(std::move(options)),
      communicator_(communicator),
      run_dir_(std::move(run_dir)),
      scaler_(options_.scaler) {
  const TrainerOptions& o = options_;
  IF_REQUIRE(o.batch_per_rank >= 1 && o.accumulation >= 1, "batch_per_rank and accumulation must be >= 1");
  precision_ = ParsePrecisionName(o.precision);
  // Identical initial replicas: same seed everywhere, then rank 0's values broadcast.
  torch::manual_seed(o.seed);
  built_ = BuildModel(o.model);
  compat::SetCurrentDevice(o.device);
  built_.model->to(o.device);
  for (const auto& p : built_.model->trainable_parameters()) parameters_.push_back(p);
  IF_REQUIRE(precision_ == torch::kFloat32 || compat::AutocastSupported(parameters_.front().device(), precision_),
             "precision ", o.precision, " is not available on ", parameters_.front().device(),
             " with this LibTorch (CPU autocast supports bf16 only before 2.3); use bf16 or fp32");
  BroadcastParameters(parameters_, communicator_);
  CheckParametersConsistent(parameters_, communicator_, "at start");
  optimizer_ = MakeAdamW(parameters_, o.optimizer);
  reducer_ = std::make_unique<GradientReducer>(parameters_, communicator_, o.reducer);
  batcher_ = std::make_unique<InstructionBatcher>(built_.tokenizers.bert, built_.tokenizers.t5, built_.config, o.seed);
  store_ = Store::Open(o.store);
  // Dropout and cue noise differ per rank, reproducibly.
  torch::manual_seed(o.seed * 1000003 + communicator_->rank());
}

Trainer::~Trainer() = default;

InstructFlipExample Trainer::MakeExample(const Batch& batch) {
  SampleTexts texts{batch.label, batch.spoof_type, batch.illumination, batch.environment, batch.camera_quality,
                    batch.sample_index + loader_state_.epoch * store_->size()};
  InstructFlipExample example = batcher_->TrainingExample(texts, options_.style_question);
  InstructFlipInputs& in = example.inputs;
  in.images = batch.images;
  const ModelConfig& c = built_.config;
  if (c.cue_noise_weight > 0 && (c.variant == Variant::kFull || c.variant == Variant::kNoLlm)) {
    // Cue noise keyed by sample (not by rank): a global batch split over any
    // number of ranks gets the same noise.
    const int64_t grid = c.vision.image_size / c.vision.patch_size, B = batch.label.size(0);
    in.cue_noise = torch::empty({B, grid * grid, c.vision.width});
    for (int64_t j = 0; j < B; ++j) {
      const uint64_t key = HashKeys({options_.seed, static_cast<uint64_t>(loader_state_.epoch),
                                     static_cast<uint64_t>(batch.sample_index[j].item<int64_t>()), 0x637565});
      at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(key);
      in.cue_noise[j].copy_(torch::randn({grid * grid, c.vision.width}, generator, torch::TensorOptions()));
    }
  }
  return example;
}

void Trainer::SaveCheckpoint() {
  CheckpointStore store(run_dir_, options_.keep_last);
  store.fault_point = options_.checkpoint_fault_point;
  const int rank = communicator_->rank();
  if (rank == 0) store.Begin(step_);
  communicator_->Barrier();
  std::vector<CheckpointFile> files;
  for (const torch::Device& device : RngDevices(options_.device)) {
    files.push_back({RankFile(rank, device), [device](const std::string& path) {
                       at::Generator generator = at::globalContext().defaultGenerator(device);
                       std::lock_guard<std::mutex> lock(generator.mutex());
                       torch::save(generator.get_state(), path);
                     }});
  }
  if (rank == 0) {
    files.push_back({"model.safetensors", [&](const std::string& path) {
                       SaveModelWeights(*built_.model, path, {{"config", options_.resolved_config}});
                     }});
    files.push_back({"optimizer.pt", [&](const std::string& path) { torch::save(*optimizer_, path); }});
    files.push_back({"trainer.json", [&](const std::string& path) {
                       nlohmann::json state{
                           {"step", step_},
                           {"loader_epoch", loader_state_.epoch},
                           {"loader_position", loader_state_.position},
                           {"loss_scale", scaler_.scale()},
                           {"loss_scale_good_steps", scaler_.good_steps()},
                           {"world_size", communicator_->size()},
                           {"global_batch", int64_t(options_.batch_per_rank) * options_.accumulation *
                                                communicator_->size()},
                           {"total_steps", options_.total_steps},
                           {"model", built_.config.name},
                           {"config", options_.resolved_config}};
                       std::ofstream(path) << state.dump(2);
                     }});
  }
  store.WriteFiles(step_, files);
  communicator_->Barrier();
  if (rank == 0) LOG(INFO) << "checkpoint " << store.Commit(step_);
  communicator_->Barrier();
}

void Trainer::Resume(const std::string& directory) {
  CheckpointStore::Verify(directory);
  const nlohmann::json state = nlohmann::json::parse(ReadFile(JoinPath(directory, "trainer.json")));
  const int64_t global_batch = int64_t(options_.batch_per_rank) * options_.accumulation * communicator_->size();
  IF_REQUIRE(state.at("global_batch").get<int64_t>() == global_batch, directory, ": the run's global batch was ",
             state.at("global_batch").get<int64_t>(), " (batch per rank x accumulation x ranks); this launch gives ",
             global_batch, ". Set accumulation so the global batch stays the same.");
  IF_REQUIRE(state.at("total_steps").get<int64_t>() == options_.total_steps, directory, ": the run was planned for ",
             state.at("total_steps").get<int64_t>(), " steps, this launch for ", options_.total_steps);
  LoadModelWeights(*built_.model, JoinPath(directory, "model.safetensors"));
  torch::load(*optimizer_, JoinPath(directory, "optimizer.pt"), options_.device);
  step_ = state.at("step").get<int64_t>();
  loader_state_ = {state.at("loader_epoch").get<int64_t>(), state.at("loader_position").get<int64_t>()};
  scaler_.Restore(state.at("loss_scale").get<double>(), state.at("loss_scale_good_steps").get<int64_t>());
  for (const torch::Device& device : RngDevices(options_.device)) {
    // A new rank after a world-size change, or a GPU run resumed from a CPU
    // checkpoint, keeps its seed-derived stream.
    const std::string rng = JoinPath(directory, RankFile(communicator_->rank(), device));
    if (!PathExists(rng)) continue;
    torch::Tensor state;
    torch::load(state, rng);
    at::Generator generator = at::globalContext().defaultGenerator(device);  // a handle to the global one
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  }
  CheckParametersConsistent(parameters_, communicator_, "after resuming from " + directory);
  LOG_IF(INFO, communicator_->rank() == 0) << "resumed from " << directory << " at step " << step_;
}

TrainResult Trainer::Run(const std::string& resume, int64_t stop_after) {
  const TrainerOptions& o = options_;
  std::optional<std::string> checkpoint;
  if (resume == "auto") {
    checkpoint = CheckpointStore(run_dir_, o.keep_last).FindLatestComplete();
  } else if (!resume.empty()) {
    checkpoint = resume;
  }
  if (checkpoint) {
    Resume(*checkpoint);
  } else if (built_.config.t5_warmup.steps > 0 && built_.config.pretrained.t5.empty() &&
             !built_.model->t5_model.is_empty()) {
    // A fresh run of a configuration without pretrained T5 weights: teach the
    // frozen T5 the answer options first (a resumed run has them in its checkpoint).
    const T5WarmupResult warmup = WarmUpT5(built_.model->t5_model, built_.config, *built_.tokenizers.t5);
    BroadcastParameters(built_.model->t5_model->parameters(), communicator_);
    LOG_IF(INFO, communicator_->rank() == 0) << "T5 warm-up (stand-in for pretraining): LM loss " << warmup.loss
                                             << " after " << warmup.steps << " steps";
  }
  const OneCycleSchedule schedule(o.schedule, o.total_steps);
  LoaderOptions loader_options;
  loader_options.domains = o.train_domains;
  loader_options.split = Split::kTrain;
  loader_options.holdout = {Holdout::Part::kTraining, o.validation_fraction, o.validation_seed};
  loader_options.sampler = {o.sampling, /*shuffle=*/true, o.seed, o.epoch_size};
  loader_options.batch_size = o.batch_per_rank;
  loader_options.rank = communicator_->rank();
  loader_options.world_size = communicator_->size();
  loader_options.drop_last = true;
  loader_options.drop_multiple = int64_t(o.batch_per_rank) * o.accumulation * communicator_->size();
  loader_options.threads = o.loader_threads;
  loader_options.prefetch = o.prefetch;
  loader_options.image_size = built_.config.vision.image_size;
  loader_options.augment.enabled = true;
  loader_options.pin_memory = compat::PinMemoryAvailable();
  auto loader = std::make_unique<Loader>(store_, loader_options, loader_state_);
  int64_t loader_epoch = loader_state_.epoch;  // the epoch `loader` serves
  const torch::Device device = parameters_.front().device();

  TrainResult result;
  built_.model->train();
  std::ofstream metrics;
  std::unique_ptr<TensorBoardWriter> events;
  if (communicator_->rank() == 0) {
    std::filesystem::create_directories(run_dir_);
    metrics.open(JoinPath(run_dir_, "metrics.jsonl"), std::ios::app);
    events = std::make_unique<TensorBoardWriter>(run_dir_);
  }
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = step_;
  const int64_t last = stop_after >= 0 ? std::min(stop_after, o.total_steps) : o.total_steps;
  while (step_ < last) {
    const auto start = std::chrono::steady_clock::now();
    double data_seconds = 0;
    // This rank's loss and its terms, averaged over the window; kept on the
    // device so a micro-step does not wait for the GPU.
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    std::map<std::string, torch::Tensor> terms;
    // 1. Sample the whole accumulation window, then count the labelled answer
    //    tokens of the global batch: the LM losses are token means over the
    //    global batch, whatever the split over ranks and micro-steps.
    std::vector<InstructFlipExample> window;
    // The window's host images stay referenced until this step has synced with
    // the device (grad norm): the loader reuses a pinned buffer as soon as
    // nothing holds it, and the copy to the GPU is asynchronous.
    std::vector<torch::Tensor> host_images;
    torch::Tensor tokens = torch::zeros({2}, torch::kFloat64);
    for (int micro = 0; micro < o.accumulation; ++micro) {
      const auto wait_start = std::chrono::steady_clock::now();
      std::optional<Batch> batch = loader->Next();
      while (!batch) {  // epoch done: the next one continues the global order
        // (the last batch's state_after already names the next epoch; a
        // checkpoint taken there resumes into the same epoch as this)
        loader_state_ = {++loader_epoch, 0};
        loader = std::make_unique<Loader>(store_, loader_options, loader_state_);
        batch = loader->Next();
      }
      data_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
      const InstructFlipExample example = MakeExample(*batch);
      loader_state_ = batch->state_after;
      tokens[0] += example.targets.content_answer_t5.ne(-100).sum().item<double>();  // on the host
      tokens[1] += example.targets.style_answer_t5.ne(-100).sum().item<double>();
      host_images.push_back(example.inputs.images);
      window.push_back(ToDevice(example, device));
    }
    communicator_->AllReduce(tokens, ReduceOp::kSum);
    // Each micro-step's loss is divided by the accumulation and averaged over
    // ranks afterwards: undo both for the token sums.
    const double parts = double(o.accumulation) * communicator_->size();
    for (int micro = 0; micro < o.accumulation; ++micro) {
      InstructFlipTargets& targets = window[micro].targets;
      targets.content_lm_tokens = std::max(1.0, tokens[0].item<double>()) / parts;
      targets.style_lm_tokens = std::max(1.0, tokens[1].item<double>()) / parts;
      // 2. Forward
      torch::Tensor loss;
      {
        std::optional<compat::AutocastGuard> autocast;
        if (precision_ != torch::kFloat32) autocast.emplace(device, precision_);
        const InstructFlipLosses losses = *built_.model->forward(window[micro].inputs, targets).losses;
        loss = losses.total / o.accumulation;
        for (const auto& [name, term] : {std::pair<const char*, torch::Tensor>{"content_lm", losses.content_lm},
                                         {"style_lm", losses.style_lm},
                                         {"classification", losses.classification},
                                         {"cue", losses.cue}})
          if (term.defined()) {
            const torch::Tensor part = term.detach().to(torch::kFloat64) / o.accumulation;
            terms[name] = terms.count(name) ? terms[name] + part : part;
          }
      }
      // 3. Backward (the reducer communicates on the last micro-step)
      const torch::Tensor backward_from = precision_ == torch::kFloat16 ? scaler_.Scale(loss) : loss;
      reducer_->Prepare(/*sync=*/micro == o.accumulation - 1, backward_from);
      backward_from.backward();
      loss_sum += loss.detach().to(torch::kFloat64);
    }
    reducer_->Finalize();
    // 4. Update
    bool skip = false;
    if (precision_ == torch::kFloat16) {
      torch::Tensor found = torch::tensor({scaler_.UnscaleAndCheck(parameters_) ? 1.0f : 0.0f});
      communicator_->AllReduce(found, ReduceOp::kSum);  // every rank skips together
      skip = found.item<float>() > 0;
      scaler_.Update(skip);
    }
    std::vector<torch::Tensor> squares;
    for (const torch::Tensor& p : parameters_)
      if (p.grad().defined()) squares.push_back(p.grad().to(torch::kFloat64).pow(2).sum());
    const double grad_norm = squares.empty() ? 0.0 : std::sqrt(torch::stack(squares).sum().item<double>());
    if (o.clip_grad_norm > 0 && !skip) torch::nn::utils::clip_grad_norm_(parameters_, o.clip_grad_norm);
    const ScheduleValues values = schedule.At(step_);
    if (!skip) {
      ApplySchedule(*optimizer_, values);
      optimizer_->step();
    } else {
      ++result.skipped_steps;
    }
    optimizer_->zero_grad();
    ++step_;
    torch::Tensor mean_loss = loss_sum.cpu().view({1});
    communicator_->AllReduce(mean_loss, ReduceOp::kAverage);
    result.last_loss = mean_loss.item<double>();
    if (communicator_->rank() == 0 && (step_ % o.log_every == 0 || step_ == last)) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double images_per_s = double(o.batch_per_rank) * o.accumulation * communicator_->size() / seconds;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double eta = elapsed / double(step_ - first_step) * double(o.total_steps - step_);
      LOG(INFO) << "step " << step_ << "/" << o.total_steps << " loss " << result.last_loss << " lr " << values.lr
                << " grad-norm " << grad_norm << " " << images_per_s << " images/s, data wait "
                << int(100 * data_seconds / seconds) << "%, ETA " << int(eta) << " s"
                << (skip ? " (step skipped: inf/nan gradients)" : "");
      nlohmann::json record{{"step", step_},         {"loss", result.last_loss},
                            {"lr", values.lr},       {"beta1", values.beta1},
                            {"grad_norm", grad_norm}, {"loss_scale", scaler_.scale()},
                            {"images_per_s", images_per_s}, {"data_wait_share", data_seconds / seconds},
                            {"eta_s", eta},          {"skipped", skip}};
      std::map<std::string, double> term_values;
      for (const auto& [name, value] : terms) term_values[name] = value.item<double>();
      for (const auto& [name, value] : term_values) record["loss_" + name] = value;
      metrics << record.dump() << "\n";
      metrics.flush();
      events->Scalar("loss/total", step_, static_cast<float>(result.last_loss));
      for (const auto& [name, value] : term_values) events->Scalar("loss/" + name, step_, static_cast<float>(value));
      events->Scalar("optim/lr", step_, static_cast<float>(values.lr));
      events->Scalar("optim/grad_norm", step_, static_cast<float>(grad_norm));
      events->Scalar("perf/images_per_s", step_, static_cast<float>(images_per_s));
      events->Flush();
    }
    if (o.checkpoint_every > 0 && step_ % o.checkpoint_every == 0 && step_ < last) SaveCheckpoint();
    // A signal on any rank stops every rank at this same step.
    torch::Tensor stop = torch::tensor({o.stop_requested != nullptr && o.stop_requested->load() ? 1.0f : 0.0f});
    communicator_->AllReduce(stop, ReduceOp::kSum);
    if (stop.item<float>() > 0 && step_ < last) {
      LOG_IF(INFO, communicator_->rank() == 0) << "stop requested: checkpointing at step " << step_;
      result.interrupted = true;
      break;
    }
  }
  SaveCheckpoint();
  result.steps = step_;
  return result;
}

}  // namespace instructflip
