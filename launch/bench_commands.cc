// bench: performance measurements that print JSON with an in-run baseline.
//   bench data: loader images/s vs. OpenCV imread of the same images as files.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "dataio/check.h"
#include "dataio/loader.h"
#include "dataio/rng.h"
#include "dataio/store.h"
#include "dataio/store_writer.h"
#include "dataio/synth.h"
#include "launch/commands.h"
#include "launch/flags.h"
#if INSTRUCTFLIP_HAVE_OPENCV
#include "dataio/baseline_loader.h"
#endif

namespace instructflip::launch {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
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
// varies quality per domain as part of its style; the benchmark pins it).
void WriteBenchStore(const std::string& dir, int images, int size, int quality) {
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
    writer.Add(i % synth.domains, EncodeJpeg(sample.image, quality), sample.attributes);
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
    WriteBenchStore(store_dir, FLAGS_images, FLAGS_size, FLAGS_quality);
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
  run_epoch(0);  // untimed warm-up
  int64_t loaded = 0;
  const auto loader_start = Clock::now();
  for (int e = 1; e <= FLAGS_epochs; ++e) loaded += run_epoch(e);
  const double loader_seconds = Seconds(loader_start);
  const double loader_rate = loaded / loader_seconds;

  nlohmann::json out;
  out["benchmark"] = "data";
  out["threads"] = FLAGS_threads;
  out["batch"] = FLAGS_batch;
  out["images"] = n;
  out["image_size"] = size;
  out["jpeg_quality"] = store->manifest().jpeg_quality;
  out["loader_images_per_s"] = loader_rate;
  out["loader_images_per_s_per_thread"] = loader_rate / FLAGS_threads;
#if INSTRUCTFLIP_HAVE_OPENCV
  // Baseline: the same JPEG bytes as individual files, one cv::imread at a time,
  // same transforms (same parameters per position), collated into a batch tensor.
  const std::string files = temp.path + "/files";
  fs::create_directories(files);
  std::vector<uint8_t> bytes;
  for (int64_t i = 0; i < n; ++i) {
    store->ReadJpeg(i, &bytes);
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

int RunBench(const std::vector<std::string>& args) {
  IF_REQUIRE(args.size() == 1 && args[0] == "data", "usage: instructflip bench data [--store DIR] [--threads T] [--json]");
  return RunBenchData();
}

}  // namespace

std::vector<Command> BenchCommands() {
  return {{"bench",
           "bench data [--store DIR] [--threads T] [--batch 32] [--images 1024] [--epochs 5] [--size 224] [--quality 90] [--json]",
           "benchmarks printing JSON with an in-run baseline (data: loader vs OpenCV imread)",
           {"store", "threads", "batch", "images", "epochs", "size", "quality", "seed", "json"},
           RunBench}};
}

}  // namespace instructflip::launch
