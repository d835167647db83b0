// Bucketed gradient all-reduce overlapped with backward (as PyTorch DDP).
//
// Parameters are grouped into buckets in reverse registration order (roughly
// the order backward produces their gradients): the first bucket small so
// communication starts early, the others `bucket_bytes`. A hook on every
// parameter copies its gradient into its bucket's flat buffer; when a bucket is
// complete, it and any complete buckets after it are launched as asynchronous
// averaging all-reduces, strictly in bucket order, so every rank issues the
// same collectives in the same order even when its graph differs.
//
// Parameters the loss does not depend on (as DDP's find_unused_parameters:
// BLIP-2's Q-Former never uses its last layer's text feed-forward) would hold
// their bucket back until Finalize(), and every bucket after it. Prepare()
// therefore walks the loss's autograd graph and fills their slots at once.
//
// Gradient accumulation: only the micro-step prepared with sync = true
// communicates; its hooks add the gradients accumulated so far, so one
// all-reduce carries the whole accumulation window. Finalize() waits and
// writes the averaged gradients back into .grad.
#pragma once

#include <chrono>
#include <vector>

#include "dist/communicator.h"

namespace instructflip {

struct ReducerOptions {
  int64_t bucket_bytes = 25ll << 20;
  int64_t first_bucket_bytes = 1ll << 20;
  bool overlap = true;  // false: launch every bucket in Finalize() (the no-overlap baseline)
};

struct ReducerStats {
  int64_t buckets = 0;
  int64_t launched_in_backward = 0;  // before backward returned (from a hook, or from Prepare)
  int64_t launched_in_finalize = 0;
  int64_t unused_parameters = 0;  // not reachable from the loss this step
  double finalize_seconds = 0;     // host time in Finalize(): on MPI, communication backward did not hide
};

class GradientReducer {
 public:
  GradientReducer(std::vector<torch::Tensor> parameters, Communicator* communicator, ReducerOptions options);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After each micro-step's forward, before `loss.backward()`; `sync` on the
  // last micro-step of a window.
  void Prepare(bool sync, const torch::Tensor& loss);
  // After backward (sync steps): completes all buckets and writes averaged .grad.
  void Finalize();

  const ReducerStats& last_stats() const { return stats_; }
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> parameters;  // indices into parameters_
    std::vector<int64_t> offsets;    // element offset of each parameter in `buffer`
    torch::Tensor buffer;            // flat fp32
    int64_t remaining = 0;           // parameters not yet copied this step
    std::unique_ptr<Work> work;
  };
  void OnGradient(size_t parameter, const torch::Tensor& gradient);
  void FillSlot(size_t parameter, const torch::Tensor& incoming);
  void LaunchReadyBuckets(bool in_backward);
  void FillUnreachable(const torch::Tensor& loss);

  std::vector<torch::Tensor> parameters_;
  std::vector<unsigned> hooks_;                        // hook handle per parameter
  std::vector<std::pair<size_t, size_t>> location_;  // parameter -> (bucket, slot)
  std::vector<bool> filled_;
  std::vector<Bucket> buckets_;
  Communicator* communicator_;
  ReducerOptions options_;
  bool sync_ = false;
  size_t next_to_launch_ = 0;
  ReducerStats stats_;
};

// Rank 0's values for every tensor (parameters at start: identical replicas).
void BroadcastParameters(const std::vector<torch::Tensor>& parameters, Communicator* communicator);
// Compares a checksum of the parameters across ranks; throws naming `when` and
// the ranks' values if they differ (replicas diverged, or a resume mixed checkpoints).
void CheckParametersConsistent(const std::vector<torch::Tensor>& parameters, Communicator* communicator,
                               const std::string& when);

}  // namespace instructflip
