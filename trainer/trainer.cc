#include "trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "model/t5_warmup.h"
#include "model/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/event_writer.h"
#include "trainer/run_files.h"

namespace instructflip {
namespace {

// fp16's scaler halves its scale on every skipped step; this many in a row (a
// scale 2^30 times smaller) is divergence, not an overflow the scaler absorbs.
constexpr int kMaxConsecutiveSkippedSteps = 30;

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
  // Here too, not only in the config: a LODO job re-splits its batch over the ranks it gets.
  IF_REQUIRE(o.model.loss.ssl == 0 || o.batch_per_rank >= 2, "the SSL branch (model.loss.ssl ", o.model.loss.ssl,
             ") needs at least 2 samples per rank (InfoNCE's negatives, its batch norm), got ", o.batch_per_rank);
  // Identical initial replicas: same seed everywhere, then rank 0's values broadcast.
  torch::manual_seed(o.seed);
  built_ = BuildModel(o.model);
  compat::SetCurrentDevice(o.device);
  built_.model->to(o.device);
  for (const auto& p : built_.model->trainable_parameters()) parameters_.push_back(p);
  IF_REQUIRE(o.precision == torch::kFloat32 || compat::AutocastSupported(parameters_.front().device(), o.precision),
             "precision ", kPrecisions.Name(o.precision), " is not available on ", parameters_.front().device(),
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
  try {
    torch::load(*optimizer_, JoinPath(directory, "optimizer.pt"), options_.device);
  } catch (const c10::Error& e) {  // its checksum matched: written so, or by another program
    IF_FAIL(JoinPath(directory, "optimizer.pt"), ": not an optimizer state this model can load (runs written "
            "before optimizer.decay existed have two parameter groups: resume them with --set optimizer.decay=matrices): ",
            e.what_without_backtrace());
  }
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

bool Trainer::ResumeIfAny(const std::string& resume) {
  std::optional<std::string> checkpoint;
  if (resume == "auto") {
    const CheckpointStore store(run_dir_, options_.keep_last);
    checkpoint = store.FindLatestComplete();
    // Starting over would prune them: damaged checkpoints are for a person to look at.
    const std::vector<std::string> damaged = store.Checkpoints();
    IF_REQUIRE(checkpoint || damaged.empty(), "every checkpoint in ", store.directory(), " is damaged (",
               damaged.size(), ", newest ", damaged.empty() ? "" : damaged.front(),
               "); move them away to start over, or resume from one named with --resume");
  } else if (!resume.empty()) {
    checkpoint = resume;
  }
  if (checkpoint) Resume(*checkpoint);
  return checkpoint.has_value();
}

void Trainer::WarmUpT5() {
  if (built_.config.t5_warmup.steps > 0 && built_.config.pretrained.t5.empty() && !built_.model->t5_model.is_empty()) {
    // A fresh run of a configuration without pretrained T5 weights: teach the
    // frozen T5 the answer options first (a resumed run has them in its checkpoint).
    bool cached = false;
    const T5WarmupResult warmup = WarmUpT5Cached(built_.model->t5_model, built_.config, *built_.tokenizers.t5,
                                                 options_.warmup_cache_dir, &cached);
    BroadcastParameters(built_.model->t5_model->parameters(), communicator_);
    LOG_IF(INFO, communicator_->rank() == 0) << "T5 warm-up (stand-in for pretraining): LM loss " << warmup.loss
                                             << " after " << warmup.steps << " steps"
                                             << (cached ? " (from " + options_.warmup_cache_dir + ")" : "");
  }
}

LoaderOptions Trainer::TrainingLoaderOptions() const {
  const TrainerOptions& o = options_;
  LoaderOptions l;
  l.domains = o.train_domains;
  l.split = Split::kTrain;
  l.spoof_types = o.spoof_types;
  l.holdout = {Holdout::Part::kTraining, o.validation_fraction, o.validation_seed};
  l.sampler = {o.sampling, /*shuffle=*/true, o.seed, o.epoch_size};
  l.batch_size = o.batch_per_rank;
  l.rank = communicator_->rank();
  l.world_size = communicator_->size();
  l.drop_last = true;
  l.drop_multiple = int64_t(o.batch_per_rank) * o.accumulation * communicator_->size();
  l.threads = o.loader_threads;
  l.prefetch = o.prefetch;
  l.image_size = built_.config.vision.image_size;
  l.augment.enabled = true;
  l.ssl_views = built_.config.loss.ssl > 0;  // the SSL branch's two views per sample
  l.pin_memory = compat::PinMemoryAvailable();
  return l;
}

TrainResult Trainer::Run(const std::string& resume, int64_t stop_after) {
  const TrainerOptions& o = options_;
  // Everything that can refuse this launch (the checkpoint, the data) comes
  // before `started` records it, and the minutes of a fresh T5 warm-up after.
  const bool resumed = ResumeIfAny(resume);
  const OneCycleSchedule schedule(o.schedule, o.total_steps);
  // Micro-batches in the global data order; an epoch's end continues with the
  // next (the last batch's state_after already names the next epoch, so a
  // checkpoint taken there resumes into the same epoch as this).
  const LoaderOptions loader_options = TrainingLoaderOptions();
  auto loader = std::make_unique<Loader>(store_, loader_options, loader_state_);
  if (o.started) o.started();
  if (!resumed) WarmUpT5();
  int64_t loader_epoch = loader_state_.epoch;  // the epoch `loader` serves
  auto next_batch = [&]() -> TrainingBatch {
    std::optional<Batch> batch = loader->Next();
    while (!batch) {
      loader_state_ = {++loader_epoch, 0};
      loader = std::make_unique<Loader>(store_, loader_options, loader_state_);
      batch = loader->Next();
    }
    TrainingBatch out{std::move(*batch), loader_state_.epoch};
    loader_state_ = out.batch.state_after;
    return out;
  };
  TrainStep train_step(built_.model, parameters_, *optimizer_, *reducer_, scaler_, communicator_, *batcher_,
                       {o.style_question, o.style_questions, o.seed, store_->size()}, {o.accumulation, o.precision, o.clip_grad_norm});
  std::optional<TrainingLog> log;
  if (communicator_->rank() == 0) log.emplace(run_dir_, step_ + 1, o);

  TrainResult result;
  built_.model->train();
  const int64_t first_step = step_;
  int consecutive_skips = 0;  // fp16 steps skipped in a row
  const int64_t last = stop_after >= 0 ? std::min(stop_after, o.total_steps) : o.total_steps;
  const auto run_start = std::chrono::steady_clock::now();
  communicator_->Barrier();  // no rank votes to stop while another is still starting up
  if (o.in_step_loop) o.in_step_loop(true);
  while (step_ < last) {
    const bool stop_requested = o.stop_requested != nullptr && o.stop_requested->load();
    communicator_->SetStep(step_ + 1);  // named by a collective that times out
    const StepStats stats = train_step.Run(next_batch, schedule.At(step_), stop_requested);
    ++step_;
    // Nothing after a diverged step would be a model: stop, leaving the last checkpoint as it is.
    IF_REQUIRE(!stats.diverged, "training diverged at step ", step_, ": loss ", stats.loss, ", gradient norm ",
               stats.grad_norm, " (not finite); no update was made and the last checkpoint is untouched; lower "
               "schedule.max_lr or set clip_grad_norm");
    consecutive_skips = stats.skipped ? consecutive_skips + 1 : 0;
    IF_REQUIRE(consecutive_skips < kMaxConsecutiveSkippedSteps, "fp16: ", consecutive_skips,
               " steps in a row up to step ", step_, " had inf/nan gradients (loss scale now ", scaler_.scale(),
               "): the model diverged, it does not just overflow; lower schedule.max_lr or use bf16");
    result.last_loss = stats.loss;
    result.skipped_steps += stats.skipped;
    if (log && (step_ % o.log_every == 0 || step_ == last)) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double eta = elapsed / double(step_ - first_step) * double(o.total_steps - step_);
      log->Write(step_, o.total_steps, stats, double(o.batch_per_rank) * o.accumulation * communicator_->size(),
                 scaler_.scale(), eta);
    }
    if (o.checkpoint_every > 0 && step_ % o.checkpoint_every == 0 && step_ < last) SaveCheckpoint();
    // A signal on any rank stops every rank at this same step (the step's vote).
    if (stats.stop && step_ < last) {
      LOG_IF(INFO, communicator_->rank() == 0) << "stop requested: checkpointing at step " << step_;
      result.interrupted = true;
      break;
    }
  }
  SaveCheckpoint();
  if (o.in_step_loop) o.in_step_loop(false);
  result.steps = step_;
  return result;
}

TrainingLog::TrainingLog(const std::string& run_dir, int64_t first_step, const TrainerOptions& o) {
  std::filesystem::create_directories(run_dir);
  metrics_.open(TrainRunFiles{run_dir}.Metrics(), std::ios::app);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  metrics_ << nlohmann::json{{"session_start", first_step}, {"time", now}}.dump() << "\n";
  metrics_.flush();
  events_ = std::make_unique<TensorBoardWriter>(run_dir);
  events_->SessionStart(first_step);
  events_->Text("config", first_step, "```yaml\n" + o.resolved_config + "```\n");
  std::string domains;
  for (const std::string& d : o.train_domains) domains += (domains.empty() ? "" : ",") + d;
  events_->HParams({{"max_lr", o.schedule.max_lr},
                    {"total_steps", double(o.total_steps)},
                    {"batch_per_rank", double(o.batch_per_rank)},
                    {"accumulation", double(o.accumulation)},
                    {"weight_decay", o.optimizer.weight_decay},
                    {"validation_fraction", o.validation_fraction},
                    {"seed", double(o.seed)}},
                   {{"model", o.model.name},
                    {"variant", kVariants.Name(o.model.variant)},
                    {"train_domains", domains},
                    {"style_question", kStyleQuestionRules.Name(o.style_question)},
                    {"precision", kPrecisions.Name(o.precision)}});
  events_->Flush();
}

TrainingLog::~TrainingLog() = default;

void TrainingLog::Write(int64_t step, int64_t total_steps, const StepStats& s, double global_batch,
                        double loss_scale, double eta_s) {
  const double images_per_s = global_batch / s.total_s;
  const double data_wait_share = s.sample_s / s.total_s;
  LOG(INFO) << "step " << step << "/" << total_steps << " loss " << s.loss << " lr " << s.schedule.lr << " grad-norm "
            << s.grad_norm << " " << images_per_s << " images/s, data wait " << int(100 * data_wait_share)
            << "%, ETA " << int(eta_s) << " s" << (s.skipped ? " (step skipped: inf/nan gradients)" : "");
  nlohmann::json record{{"step", step},
                        {"loss", s.loss},
                        {"lr", s.schedule.lr},
                        {"beta1", s.schedule.beta1},
                        {"grad_norm", s.grad_norm},
                        {"loss_scale", loss_scale},
                        {"images_per_s", images_per_s},
                        {"data_wait_share", data_wait_share},
                        {"eta_s", eta_s},
                        {"skipped", s.skipped},
                        {"phase_s",
                         {{"sample", s.sample_s},
                          {"inputs", s.inputs_s},
                          {"forward", s.forward_s},
                          {"backward", s.backward_s},
                          {"exposed_communication", s.exposed_communication_s},
                          {"update", s.update_s}}}};
  for (const auto& [name, value] : s.loss_terms) record["loss_" + name] = value;
  metrics_ << record.dump() << "\n";
  metrics_.flush();
  events_->Scalar("loss/total", step, static_cast<float>(s.loss));
  for (const auto& [name, value] : s.loss_terms) events_->Scalar("loss/" + name, step, static_cast<float>(value));
  events_->Scalar("optim/lr", step, static_cast<float>(s.schedule.lr));
  events_->Scalar("optim/grad_norm", step, static_cast<float>(s.grad_norm));
  events_->Scalar("perf/images_per_s", step, static_cast<float>(images_per_s));
  events_->Flush();
}

}  // namespace instructflip
