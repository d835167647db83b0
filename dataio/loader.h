// Loader: multi-threaded batches from a Store for one rank of a job.
//
// Order and sharding: an epoch is a global sequence of samples (sampler.h),
// the same for every world size. Each step consumes one global micro-batch of
// G = batch_size x world_size consecutive positions; rank r takes positions
// [p + r*B, p + (r+1)*B). Resuming from LoaderState{epoch, position} on any
// world size continues the same global sequence.
// Tail rule: with drop_last (training) the epoch is cut to a multiple of
// `drop_multiple` (default G) and the rest dropped; without it (evaluation) it is padded:
// positions past the end come back with valid = false, so across ranks every
// sample of the epoch is returned exactly once with valid = true.
//
// Threads: each worker builds whole batches (read with pread, CRC-check,
// TurboJPEG decode, transform into the batch tensor); batches come out in order
// and up to `prefetch` are built ahead. Augmentation is keyed by (seed, epoch,
// position), so it does not depend on which thread did the work.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "dataio/augment.h"
#include "dataio/sampler.h"
#include "dataio/schema.h"
#include "dataio/store.h"
#include "dataio/base/ordered_parallel.h"
#include "dataio/base/torch_compat.h"

namespace instructflip {

struct LoaderOptions {
  std::vector<std::string> domains;  // empty: every domain of the store
  std::optional<Split> split;        // empty: both splits, a source stored in both counted once
  std::vector<int> spoof_types;      // empty: any; else only samples of these spoof types (0 = live)
  int64_t first = 0;                 // > 0: only the first N of those samples in store order
  Holdout holdout;                   // validation hold-out of the selected samples
  SamplerOptions sampler;            // mode, shuffle, seed, epoch_size
  int batch_size = 24;               // per rank
  int rank = 0;
  int world_size = 1;
  bool drop_last = true;
  // With drop_last the epoch is cut to a multiple of this many samples; 0 means
  // batch_size x world_size. A trainer passes its optimizer step's global batch
  // (x accumulation), so where an epoch ends does not depend on the world size.
  int64_t drop_multiple = 0;
  int threads = 4;
  int prefetch = 4;                  // batches built ahead (at least `threads` are in flight)
  int image_size = 0;                // output side; 0 = the store's image size
  AugmentOptions augment;
  bool ssl_views = false;            // also two SimCLR views per sample (ssl_views.h), for the SSL branch
  NormalizeOptions normalize;
  bool pin_memory = false;           // page-locked batch memory (CUDA hosts)
};

struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;  // global samples of the epoch already consumed
  bool operator==(const LoaderState& o) const { return epoch == o.epoch && position == o.position; }
};

struct Batch {
  torch::Tensor images;          // (B, 3, H, W) float32, normalised
  torch::Tensor label;           // (B,) int64, 0 live / 1 spoof
  torch::Tensor spoof_type;      // (B,) int64, 0..10
  torch::Tensor illumination;    // (B,) int64, -1..3
  torch::Tensor environment;     // (B,) int64, -1..1
  torch::Tensor camera_quality;  // (B,) int64, -1..2
  torch::Tensor domain;          // (B,) int64, store domain index
  torch::Tensor video_id;        // (B,) int64
  torch::Tensor subject_id;      // (B,) int64
  torch::Tensor sample_index;    // (B,) int64, store index (-1 for padding)
  torch::Tensor valid;           // (B,) bool, false for padding past the epoch's end
  torch::Tensor ssl_views;       // (2, B, 3, H, W) float, with LoaderOptions.ssl_views; else undefined
  LoaderState state_after;       // resume point after this batch (next epoch once this one is done)
};

class Loader {
 public:
  Loader(std::shared_ptr<const Store> store, LoaderOptions options, LoaderState start = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Next batch of this rank, or nullopt once the epoch is exhausted. Rethrows a
  // worker's error (e.g. a damaged sample, named by shard and index).
  std::optional<Batch> Next();

  const std::vector<int64_t>& epoch_order() const { return order_; }
  int64_t batches_in_epoch() const { return num_batches_; }
  // Store indices that pass the domain/split filters (ascending).
  const std::vector<int64_t>& eligible() const { return eligible_; }

 private:
  Batch BuildBatch(int64_t k);
  // Image buffers are recycled once the consumer drops a batch: a fresh 20 MB
  // tensor per batch costs more in page faults than decoding its images.
  torch::Tensor AcquireImageBuffer();

  std::shared_ptr<const Store> store_;
  LoaderOptions options_;
  LoaderState start_;
  int image_size_ = 0;
  std::vector<int64_t> eligible_;
  std::vector<int64_t> order_;
  int64_t usable_length_ = 0;  // positions of the epoch this loader serves
  int64_t num_batches_ = 0;

  std::mutex pool_mutex_;
  std::vector<torch::Tensor> image_pool_;

  // Last member: its workers call BuildBatch, so they stop before the state above goes.
  std::unique_ptr<OrderedParallel<Batch>> batches_;
};

}  // namespace instructflip
