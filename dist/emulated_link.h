// A communicator that adds the transfer time of a slower network to the
// all-reduces of another one, for benchmarks: what gradient overlap saves on a
// cluster's link rather than this machine's shared memory.
//
// The emulated link carries one message at a time; a message of B bytes on n
// ranks occupies it for 2(n-1)/n * B / bandwidth (a ring all-reduce's traffic
// per rank), starting when it is launched or when the link frees up. Work::
// Wait() returns once both the real collective and the link are done. The
// wait is a sleep, as a NIC moves the bytes without the CPU. Broadcasts,
// gathers and barriers pass through unchanged.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include "dist/communicator.h"

namespace instructflip {

class EmulatedLinkCommunicator : public Communicator {
 public:
  using Clock = std::chrono::steady_clock;
  EmulatedLinkCommunicator(Communicator* inner, double gigabits_per_second);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string name() const override { return inner_->name() + "+link"; }
  std::unique_ptr<Work> AllReduceAsync(torch::Tensor& tensor, ReduceOp op) override;
  void Broadcast(torch::Tensor& tensor, int root) override { inner_->Broadcast(tensor, root); }
  torch::Tensor AllGather(const torch::Tensor& tensor) override { return inner_->AllGather(tensor); }
  void Barrier() override { inner_->Barrier(); }

  // When a message of `bytes` launched now leaves the link (reserves it).
  Clock::time_point Reserve(int64_t bytes);

 private:
  Communicator* inner_;
  double bytes_per_second_;
  std::mutex mutex_;
  Clock::time_point link_free_ = Clock::time_point::min();
};

}  // namespace instructflip
