// bench: performance measurements that print JSON with an in-run baseline.
//   bench data: loader images/s vs. OpenCV imread of the same images as files.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/image_codec.h"
#include "dataio/loader.h"
#include "dataio/base/rng.h"
#include "dataio/store.h"
#include "dataio/store_writer.h"
#include "dataio/producers/synth.h"
#include "dist/emulated_link.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_runtime.h"
#include "dist/reducer.h"
#include "launch/commands.h"
#include "launch/config_paths.h"
#include "launch/flags.h"
#include "launch/model_config_yaml.h"
#include "model/flops.h"
#include "model/build.h"
#include "model/instruct_flip.h"
#include "model/instruction_batch.h"
#include "model/tokenizers.h"
#include "trainer/optimizer.h"
#include "trainer/train_step.h"
#if INSTRUCTFLIP_HAVE_OPENCV
#include "dataio/producers/baseline_loader.h"
#endif

namespace instructflip::launch {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Repeated timings on a shared machine: the median, so a stray slow run does
// not decide the result.
double Median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// A temporary directory removed on scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "instructflip-bench-XXXXXX").string();
    IF_REQUIRE(::mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// Synthetic faces at a single JPEG quality (the store that `synth` writes
// varies quality per domain as part of its style; the benchmark pins it), or
// the same faces as lossless PNG.
void WriteBenchStore(const std::string& dir, int images, int size, int quality, ImageEncoding encoding) {
  StoreWriterOptions options;
  options.dir = dir;
  options.image_size = size;
  options.jpeg_quality = quality;
  StoreWriter writer(options);
  SynthOptions synth;
  synth.size = size;
  synth.domains = 4;
  synth.per_domain = std::max(8, (images + 3) / 4);
  for (int d = 0; d < synth.domains; ++d) writer.AddDomain("bench" + std::to_string(d));
  for (int i = 0; i < images; ++i) {
    const SynthSample sample = RenderSynthSample(synth, i % synth.domains, i / synth.domains);
    writer.Add(i % synth.domains, EncodeStoredImage(sample.image, encoding, quality), sample.attributes);
  }
  writer.Commit();
}

int RunBenchData() {
  IF_REQUIRE(FLAGS_threads >= 1, "--threads must be >= 1");
  IF_REQUIRE(FLAGS_epochs >= 1, "--epochs must be >= 1");
  TempDir temp;
  std::string store_dir = FLAGS_store;
  if (store_dir.empty()) {
    store_dir = temp.path + "/store";
    WriteBenchStore(store_dir, FLAGS_images, FLAGS_size, FLAGS_quality, ImageEncoding::kJpeg);
  }
  auto store = Store::Open(store_dir);
  const int64_t n = store->size();
  const int size = store->image_size();

  LoaderOptions options;
  options.threads = FLAGS_threads;
  options.prefetch = 2 * FLAGS_threads;
  options.batch_size = FLAGS_batch;
  options.drop_last = false;
  options.augment.enabled = true;
  options.sampler.seed = FLAGS_seed;
  options.pin_memory = compat::PinMemoryAvailable();

  // Untimed warm-up pass (page cache, allocator, thread start), then timed epochs.
  auto run_epoch = [&](int64_t epoch) {
    Loader loader(store, options, LoaderState{epoch, 0});
    int64_t images = 0;
    while (auto batch = loader.Next()) images += batch->valid.sum().item<int64_t>();
    return images;
  };
  auto measure = [&](const std::shared_ptr<const Store>& measured) {
    store = measured;
    run_epoch(0);  // untimed warm-up
    int64_t loaded = 0;
    const auto loader_start = Clock::now();
    for (int e = 1; e <= FLAGS_epochs; ++e) loaded += run_epoch(e);
    return loaded / Seconds(loader_start);
  };
  auto store_bytes = [](const Store& s) {
    int64_t bytes = 0;
    for (const ShardEntry& shard : s.manifest().shards) bytes += shard.bytes;
    return bytes;
  };
  // The same faces stored losslessly (ingest --encoding png): decode cost and size.
  nlohmann::json per_encoding;
  if (FLAGS_store.empty()) {
    const std::string png_dir = temp.path + "/store-png";
    WriteBenchStore(png_dir, FLAGS_images, FLAGS_size, FLAGS_quality, ImageEncoding::kPng);
    const auto png_store = Store::Open(png_dir);
    per_encoding["png"] = {{"loader_images_per_s", measure(png_store)}, {"store_bytes", store_bytes(*png_store)}};
  }
  const std::shared_ptr<const Store> jpeg_store = Store::Open(store_dir);
  const double loader_rate = measure(jpeg_store);
  per_encoding["jpeg"] = {{"loader_images_per_s", loader_rate}, {"store_bytes", store_bytes(*jpeg_store)}};

  nlohmann::json out;
  out["benchmark"] = "data";
  out["threads"] = FLAGS_threads;
  out["batch"] = FLAGS_batch;
  out["images"] = n;
  out["image_size"] = size;
  out["jpeg_quality"] = store->manifest().jpeg_quality;
  out["loader_images_per_s"] = loader_rate;
  out["loader_images_per_s_per_thread"] = loader_rate / FLAGS_threads;
  out["per_encoding"] = per_encoding;
  if (per_encoding.contains("png"))
    out["png_vs_jpeg_loader_speed"] = per_encoding["png"]["loader_images_per_s"].get<double>() / loader_rate;
#if INSTRUCTFLIP_HAVE_OPENCV
  // Baseline: the same JPEG bytes as individual files, one cv::imread at a time,
  // same transforms (same parameters per position), collated into a batch tensor.
  const std::string files = temp.path + "/files";
  fs::create_directories(files);
  std::vector<uint8_t> bytes;
  for (int64_t i = 0; i < n; ++i) {
    store->ReadImageBytes(i, &bytes);
    std::ofstream(files + "/" + std::to_string(i) + ".jpg", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  const int64_t per_image = 3ll * size * size;
  torch::Tensor batch = torch::empty({FLAGS_batch, 3, size, size});
  auto baseline_epoch = [&](int64_t epoch) {
    const std::vector<int64_t> order = BuildEpochOrder(
        [&] { std::vector<int64_t> all(n); for (int64_t i = 0; i < n; ++i) all[i] = i; return all; }(),
        store->table(), options.sampler, epoch);
    for (int64_t p = 0; p < static_cast<int64_t>(order.size()); ++p) {
      const AugmentParams params = SampleAugmentParams(
          options.augment, HashKeys({options.sampler.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(p)}));
      BaselineLoadImage(files + "/" + std::to_string(order[p]) + ".jpg", size, params, options.normalize,
                        batch.data_ptr<float>() + (p % FLAGS_batch) * per_image);
    }
    return static_cast<int64_t>(order.size());
  };
  SetBaselineThreads(1);
  baseline_epoch(0);
  int64_t baseline_images = 0;
  const auto baseline_start = Clock::now();
  for (int e = 1; e <= FLAGS_epochs; ++e) baseline_images += baseline_epoch(e);
  const double baseline_rate = baseline_images / Seconds(baseline_start);
  out["baseline"] = "cv::imread of individual .jpg files, one by one, same transforms, 1 thread";
  out["baseline_images_per_s"] = baseline_rate;
  out["ratio"] = loader_rate / baseline_rate;
#else
  out["baseline"] = "unavailable: built without OpenCV";
  out["baseline_images_per_s"] = nullptr;
  out["ratio"] = nullptr;
#endif
  std::cout << out.dump(FLAGS_json ? -1 : 2) << "\n";
  return 0;
}


// Dense peak of the GPU for the precision, for MFU; 0 if unknown.
double PeakTflops(const std::string& device_name, torch::ScalarType precision) {
  if (precision == torch::kFloat32) return 0;
  if (device_name.find("H100") != std::string::npos) return 989.4;  // SXM, dense bf16/fp16
  if (device_name.find("H200") != std::string::npos) return 989.4;
  if (device_name.find("A100") != std::string::npos) return 312.0;
  return 0;
}

// A synthetic batch of B images with known attributes and its instruction texts.
// A synthetic training micro-batch of B images with known attributes.
TrainingBatch SyntheticBatch(const ModelConfig& config, int64_t B) {
  const int64_t S = config.vision.image_size;
  Batch b;
  b.images = torch::randn({B, 3, S, S});
  b.label = torch::arange(B) % 2;
  b.spoof_type = b.label * (1 + torch::arange(B) % 10);
  b.illumination = torch::arange(B) % 4;
  b.environment = torch::arange(B) % 2;
  b.camera_quality = torch::arange(B) % 3;
  b.sample_index = torch::arange(B);
  b.video_id = torch::arange(B);
  b.valid = torch::ones({B}, torch::kBool);
  return {b, 0};
}

// The training step of `bench step`: TrainStep itself (the trainer's), on a
// fixed synthetic batch, with AdamW and a reducer over `gradients`.
struct BenchTrainer {
  BuiltModel built;
  std::vector<torch::Tensor> parameters;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<GradientReducer> reducer;
  DynamicLossScaler scaler;
  std::unique_ptr<InstructionBatcher> batcher;
  std::unique_ptr<TrainStep> step;
  TrainingBatch batch;

  BenchTrainer(const ModelConfig& config, int64_t B, const torch::Device& device, torch::ScalarType precision,
               Communicator* bookkeeping, Communicator* gradients, const ReducerOptions& reducer_options) {
    torch::manual_seed(0);
    built = BuildModel(config);
    built.model->to(device);
    built.model->train();
    parameters = built.model->trainable_parameters();
    optimizer = MakeAdamW(parameters, OptimizerOptions{});
    reducer = std::make_unique<GradientReducer>(parameters, gradients, reducer_options);
    batcher = std::make_unique<InstructionBatcher>(built.tokenizers.bert, built.tokenizers.t5, built.config, 0);
    step = std::make_unique<TrainStep>(built.model, parameters, *optimizer, *reducer, scaler, bookkeeping, *batcher,
                                       InputRules{}, TrainStepOptions{1, precision, 0.0});
    batch = SyntheticBatch(built.config, B);
  }
  StepStats Run() {
    return step->Run([this] { return batch; }, ScheduleValues{1e-6, 0.9}, /*stop_requested=*/false);
  }
};

// Median per-phase seconds of `steps`.
nlohmann::json PhaseMedians(const std::vector<StepStats>& steps) {
  auto median = [&](double StepStats::*field) {
    std::vector<double> values;
    for (const StepStats& s : steps) values.push_back(s.*field);
    return Median(values);
  };
  return {{"sample", median(&StepStats::sample_s)},
          {"inputs", median(&StepStats::inputs_s)},
          {"forward", median(&StepStats::forward_s)},
          {"backward", median(&StepStats::backward_s)},
          {"exposed_communication", median(&StepStats::exposed_communication_s)},
          {"update", median(&StepStats::update_s)},
          {"total", median(&StepStats::total_s)}};
}

// Weak scaling under mpirun -np N: per-rank throughput of N ranks (same batch
// per rank, gradients all-reduced with and without overlap) against one rank
// alone. One intra-op thread per rank so the ranks do not share cores.
int RunBenchStepScaling(const ModelConfig& config_in, int64_t B) {
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  IF_REQUIRE(world.size == FLAGS_ranks, "bench step --ranks ", FLAGS_ranks, " must run under mpirun -np ",
             FLAGS_ranks, " (this job has ", world.size, " ranks)");
  torch::set_num_threads(1);
  ModelConfig config = config_in;
  config.tokenizers = TokenizerConfig{};
  config.pretrained = PretrainedConfig{};
  MpiCommunicator communicator(MPI_COMM_WORLD, std::chrono::minutes(10));
  // Gradients may cross an emulated slower link (a cluster's network instead
  // of this machine's shared memory), where overlap has something to hide.
  std::optional<EmulatedLinkCommunicator> link;
  if (FLAGS_link_gbps > 0) link.emplace(&communicator, FLAGS_link_gbps);
  Communicator* gradients = link ? static_cast<Communicator*>(&*link) : &communicator;
  ReducerOptions options;
  options.bucket_bytes = 256 << 10;  // several buckets even for the tiny model
  options.first_bucket_bytes = 32 << 10;

  double alone = 0;
  if (world.rank == 0) {
    auto single = MakeSingleProcessCommunicator();
    BenchTrainer trainer(config, B, torch::kCPU, torch::kFloat32, single.get(), single.get(), options);
    std::vector<double> seconds;
    trainer.Run();
    for (int i = 0; i < FLAGS_steps; ++i) seconds.push_back(trainer.Run().total_s);
    alone = Median(seconds);
  }
  communicator.Barrier();
  BenchTrainer overlapped(config, B, torch::kCPU, torch::kFloat32, &communicator, gradients, options);
  options.overlap = false;
  BenchTrainer serial(config, B, torch::kCPU, torch::kFloat32, &communicator, gradients, options);
  int64_t gradient_bytes = 0;
  for (const torch::Tensor& p : overlapped.parameters) gradient_bytes += p.numel() * 4;
  // Alternating steps, so both modes see the same machine load; medians, so a
  // stray slow step (two ranks share two cores) does not decide the result.
  std::vector<StepStats> stats[2];
  BenchTrainer* modes[2] = {&overlapped, &serial};
  for (int i = 0; i <= FLAGS_steps; ++i)
    for (int m = 0; m < 2; ++m) {
      const StepStats s = modes[m]->Run();
      if (i > 0) stats[m].push_back(s);  // the first is a warm-up
    }
  const nlohmann::json phases[2] = {PhaseMedians(stats[0]), PhaseMedians(stats[1])};
  // Both ranks' medians, averaged.
  torch::Tensor times = torch::tensor({phases[0]["total"].get<double>(), phases[1]["total"].get<double>(),
                                       phases[0]["exposed_communication"].get<double>(),
                                       phases[1]["exposed_communication"].get<double>()},
                                      torch::kFloat64);
  communicator.AllReduce(times, ReduceOp::kAverage);
  if (world.rank == 0) {
    const double with_overlap = times[0].item<double>(), without_overlap = times[1].item<double>();
    nlohmann::json out{{"benchmark", "step_scaling"},
                       {"model", config.name},
                       {"batch_per_rank", B},
                       {"ranks", world.size},
                       {"gradient_bytes", gradient_bytes},
                       {"link", FLAGS_link_gbps > 0 ? "emulated (dist/emulated_link.h)" : "this machine (MPI)"},
                       {"link_gbps", FLAGS_link_gbps > 0 ? nlohmann::json(FLAGS_link_gbps) : nlohmann::json(nullptr)},
                       {"buckets", overlapped.reducer->num_buckets()},
                       {"images_per_s_1_rank", B / alone},
                       {"images_per_s_per_rank_overlap", B / with_overlap},
                       {"images_per_s_per_rank_no_overlap", B / without_overlap},
                       {"weak_scaling_efficiency_overlap", alone / with_overlap},
                       {"weak_scaling_efficiency_no_overlap", alone / without_overlap},
                       {"exposed_communication_ms_overlap", 1e3 * times[2].item<double>()},
                       {"exposed_communication_ms_no_overlap", 1e3 * times[3].item<double>()},
                       {"phase_s_rank0_overlap", phases[0]},
                       {"phase_s_rank0_no_overlap", phases[1]}};
    std::cout << out.dump(FLAGS_json ? -1 : 2) << "\n";
  }
  return 0;
}

// One training step (TrainStep: inputs, forward, backward, AdamW update) of the
// full model on a synthetic batch, on one GPU if there is one.
int RunBenchStep() {
  IF_REQUIRE(FLAGS_batch >= 1 && FLAGS_steps >= 1, "--batch and --steps must be >= 1");
  const torch::ScalarType precision = kPrecisions.Parse(FLAGS_precision, "--precision");
  ModelConfig config = LoadModelConfig(ResolveModelConfigPath(FLAGS_model));
  if (FLAGS_ranks > 1) return RunBenchStepScaling(config, FLAGS_batch);
  // Throughput does not depend on the vocabulary's content or the weights'
  // values: use the built-in tokenizers and random weights.
  config.tokenizers = TokenizerConfig{};
  config.pretrained = PretrainedConfig{};
  const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  auto single = MakeSingleProcessCommunicator();
  const int64_t B = FLAGS_batch;
  BenchTrainer trainer(config, B, device, precision, single.get(), single.get(), ReducerOptions{});
  trainer.Run();  // warm-up (allocator, kernels)
  std::vector<StepStats> steps;
  const auto start = Clock::now();
  for (int i = 0; i < FLAGS_steps; ++i) steps.push_back(trainer.Run());  // each waits for the device (grad norm)
  const double seconds = Seconds(start);
  const double images_per_s = B * FLAGS_steps / seconds;

  const InstructFlipExample example =
      MakeModelInputs(trainer.batch, *trainer.batcher, trainer.built.config, InputRules{});
  StepShape shape;
  shape.content_text = example.inputs.content_question_qformer.ids.size(1);
  shape.style_text = example.inputs.style_question_qformer.ids.size(1);
  shape.content_t5_input = example.inputs.content_question_t5.ids.size(1);
  shape.style_t5_input = example.inputs.style_question_t5.ids.size(1);
  shape.content_answer = example.targets.content_answer_t5.size(1);
  shape.style_answer = example.targets.style_answer_t5.size(1);
  const double flops_per_image = CountFlopsPerImage(trainer.built.config, shape).TrainingStep();
  const double achieved = flops_per_image * images_per_s / 1e12;
  int64_t parameters = 0, trainable = 0;
  for (const auto& p : trainer.built.model->parameters()) {
    parameters += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  const std::string device_name = device.is_cuda() ? compat::CudaDeviceName(device.index()) : "cpu";
  nlohmann::json out;
  out["benchmark"] = "step";
  out["device"] = device_name;
  out["model"] = config.name;
  out["batch"] = B;
  out["precision"] = FLAGS_precision;
  out["steps"] = FLAGS_steps;
  out["threads"] = torch::get_num_threads();
  out["images_per_s"] = images_per_s;
  out["phase_s"] = PhaseMedians(steps);  // medians; host time (GPU work lands where the host waits)
  out["flops_per_image"] = flops_per_image;
  out["achieved_tflops"] = achieved;
  out["parameters"] = parameters;
  out["trainable_parameters"] = trainable;
  const double peak = PeakTflops(device_name, precision);
  out["peak_tflops"] = peak > 0 ? nlohmann::json(peak) : nlohmann::json(nullptr);
  out["mfu"] = peak > 0 ? nlohmann::json(achieved / peak) : nlohmann::json(nullptr);
  std::cout << out.dump(FLAGS_json ? -1 : 2) << "\n";
  return 0;
}

// Bus bandwidth (bytes x 2(n-1)/n per second, the ring all-reduce's traffic per
// rank) of the communicator's all-reduce and of a raw blocking MPI_Allreduce of
// the same buffer, per message size. Run under mpirun; rank 0 prints.
// The three are timed in alternating rounds and each reports its median round,
// so a burst of load on a shared machine hits all of them or none.
int RunBenchAllReduce() {
  constexpr int kRounds = 7;
  const WorldInfo world = MpiRuntime::Init(nullptr, nullptr).world();
  MpiCommunicator communicator(MPI_COMM_WORLD, std::chrono::minutes(10));
  const int n = world.size;
  nlohmann::json results = nlohmann::json::array();
  for (int64_t bytes : {int64_t(4) << 10, int64_t(64) << 10, int64_t(1) << 20, int64_t(16) << 20, int64_t(64) << 20}) {
    torch::Tensor buffer = torch::ones({bytes / 4});
    int iterations = 3;
    auto time_it = [&](const std::function<void()>& once) {
      for (int i = 0; i < 2; ++i) once();  // warm-up
      communicator.Barrier();
      const auto start = Clock::now();
      for (int i = 0; i < iterations; ++i) once();
      double seconds = Seconds(start) / iterations;
      // The slowest rank defines the collective's time.
      torch::Tensor t = torch::tensor({seconds}, torch::kFloat64);
      communicator.AllReduce(t, ReduceOp::kSum);
      return t.item<double>() / n;
    };
    const std::function<void()> variants[3] = {
        [&] { communicator.AllReduce(buffer, ReduceOp::kSum); },
        // The path gradient buckets take: queued to the communication thread.
        [&] { communicator.AllReduceAsync(buffer, ReduceOp::kSum)->Wait(); },
        [&] {
          IF_MPI(MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(buffer.numel()), MPI_FLOAT,
                               MPI_SUM, MPI_COMM_WORLD));
        }};
    // Repetitions for ~0.1 s per round, from the raw collective's own time (the
    // ranks' mean, so every rank runs the same count): a fixed count sized for
    // a fast link would run for an hour where one collective takes milliseconds
    // (TCP between two hosts).
    const double once_s = time_it(variants[2]);
    iterations = static_cast<int>(std::clamp(0.1 / std::max(once_s, 1e-7), 3.0, 20000.0));
    std::vector<double> rounds[3];
    for (int round = 0; round < kRounds; ++round)
      for (int v = 0; v < 3; ++v) rounds[v].push_back(time_it(variants[v]));
    const double ours = Median(rounds[0]), ours_async = Median(rounds[1]), raw = Median(rounds[2]);
    const double factor = n > 1 ? 2.0 * (n - 1) / n : 1.0;
    const double ours_gbps = bytes * factor / ours / 1e9, raw_gbps = bytes * factor / raw / 1e9;
    const double async_gbps = bytes * factor / ours_async / 1e9;
    results.push_back({{"bytes", bytes},
                       {"communicator_busbw_gb_per_s", ours_gbps},
                       {"communicator_async_busbw_gb_per_s", async_gbps},
                       {"mpi_busbw_gb_per_s", raw_gbps},
                       {"ratio", ours_gbps / raw_gbps},
                       {"ratio_async", async_gbps / raw_gbps}});
  }
  if (world.rank == 0) {
    nlohmann::json out{{"benchmark", "allreduce"},
                       {"communicator", communicator.name()},
                       {"ranks", n},
                       {"baseline", "blocking MPI_Allreduce of the same buffer"},
                       {"results", results}};
    std::cout << out.dump(FLAGS_json ? -1 : 2) << "\n";
  }
  return 0;
}

int NoPositionals(const std::vector<std::string>& args, const char* command, int (*run)()) {
  IF_REQUIRE(args.empty(), command, " takes no positional arguments, got '", args.empty() ? "" : args[0], "'");
  return run();
}

}  // namespace

std::vector<Command> BenchCommands() {
  return {{"bench data", "", "JSON: the loader's images/s against OpenCV imread of the same images as .jpg files",
           {Optional("store", "DIR", "store to read").Absent("a generated one of --images images"),
            Optional("threads", "T", "loader threads"), Optional("batch", "B", "batch size"),
            Optional("images", "N", "images in the generated store"), Optional("epochs", "N", "timed passes"),
            Optional("size", "PX", "image side of the generated store"),
            Optional("quality", "Q", "JPEG quality of the generated store"),
            Optional("seed", "S", "augmentation seed"), Switch("json", "one-line JSON")},
           false, "", [](const std::vector<std::string>& a) { return NoPositionals(a, "bench data", RunBenchData); }},
          {"bench step", "", "JSON: TrainStep's per-phase times, images/s and MFU; --ranks N: weak scaling",
           {Optional("model", "tiny|base|FILE", "model configuration"), Optional("batch", "B", "batch size per rank"),
            Optional("steps", "N", "timed steps (after one warm-up step)"),
            Optional("precision", kPrecisions.Alternatives(), "autocast precision (one rank; --ranks measures fp32)"),
            Optional("ranks", "N", "weak scaling over N ranks (run under mpirun -np N)"),
            Optional("link_gbps", "G", "--ranks: add a G Gbit/s link's transfer time to every all-reduce; 0: this machine"),
            Switch("json", "one-line JSON")},
           false, "      mpirun -np 2 instructflip bench step --ranks 2 [--link-gbps G]",
           [](const std::vector<std::string>& a) { return NoPositionals(a, "bench step", RunBenchStep); }},
          {"bench allreduce", "", "JSON: the communicator's all-reduce bus bandwidth against raw MPI_Allreduce",
           {Switch("json", "one-line JSON")}, false, "      mpirun -np N instructflip bench allreduce",
           [](const std::vector<std::string>& a) { return NoPositionals(a, "bench allreduce", RunBenchAllReduce); }}};
}

}  // namespace instructflip::launch
