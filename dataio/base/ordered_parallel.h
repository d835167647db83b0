// Ordered parallelism: produce(i) for i in [0, count) runs on worker threads,
// and the results come back in index order. The one home of this pattern: the
// loader's batches, synth's rendered samples and ingest's decoded inputs all go
// through it, so their output never depends on which thread did the work.
//
//   OrderedParallel<Batch> batches(n, threads, window, [&](int64_t k) { return Build(k); });
//   while (std::optional<Batch> b = batches.Next()) Use(*b);
//
// At most `window` results are claimed but not yet taken by Next(), which bounds
// memory and lets the consumer overlap with the producers. An exception thrown by
// produce(i) is rethrown by Next() at index i, after results 0..i-1 (so the error
// a caller sees does not depend on scheduling), and again by any later Next();
// no index past i is claimed once produce(i) has failed. The destructor stops
// and joins the workers however the owner exits (results not taken are dropped).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "dataio/base/check.h"

namespace instructflip {

template <typename Result>
class OrderedParallel {
 public:
  using Produce = std::function<Result(int64_t index)>;

  OrderedParallel(int64_t count, int threads, int64_t window, Produce produce)
      : count_(count), window_(std::max<int64_t>(1, std::min(window, count))), produce_(std::move(produce)) {
    IF_REQUIRE(count >= 0, "ordered parallel: count must be >= 0, got ", count);
    IF_REQUIRE(threads >= 1, "ordered parallel: threads must be >= 1, got ", threads);
    IF_REQUIRE(window >= 1, "ordered parallel: window must be >= 1, got ", window);
    ring_.resize(static_cast<size_t>(window_));
    // Threads beyond the window or the work would only wait.
    const int64_t useful = std::min<int64_t>({threads, window_, count});
    try {
      for (int64_t t = 0; t < useful; ++t) workers_.emplace_back([this] { WorkerLoop(); });
    } catch (...) {  // no thread to be had: the started ones must not outlive this
      StopAndJoin();
      throw;
    }
  }

  ~OrderedParallel() { StopAndJoin(); }

  OrderedParallel(const OrderedParallel&) = delete;
  OrderedParallel& operator=(const OrderedParallel&) = delete;

  // The result of the next index, or nullopt once all `count` were taken.
  std::optional<Result> Next() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (failure_) std::rethrow_exception(failure_);
    if (taken_ >= count_) return std::nullopt;
    Slot& slot = ring_[static_cast<size_t>(taken_ % window_)];
    changed_.wait(lock, [&] { return slot.ready; });
    Slot done = std::move(slot);
    slot = Slot{};
    ++taken_;
    if (done.error) failure_ = done.error;
    lock.unlock();
    changed_.notify_all();  // a ring slot is free again
    if (done.error) std::rethrow_exception(done.error);
    return std::move(done.result);
  }

 private:
  void StopAndJoin() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    for (std::thread& worker : workers_)
      if (worker.joinable()) worker.join();
  }

  struct Slot {
    bool ready = false;
    std::optional<Result> result;
    std::exception_ptr error;
  };

  void WorkerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      // Index i may be claimed once index i - window was taken: its ring slot is then free.
      changed_.wait(lock, [&] { return stop_ || failed_ || claimed_ >= count_ || claimed_ < taken_ + window_; });
      if (stop_ || failed_ || claimed_ >= count_) return;
      const int64_t index = claimed_++;
      lock.unlock();
      Slot slot;
      slot.ready = true;
      try {
        slot.result.emplace(produce_(index));
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      if (slot.error) failed_ = true;
      ring_[static_cast<size_t>(index % window_)] = std::move(slot);
      changed_.notify_all();
    }
  }

  const int64_t count_;
  const int64_t window_;
  const Produce produce_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Slot> ring_;  // result i waits in ring_[i % window]
  int64_t claimed_ = 0;     // next index a worker takes on
  int64_t taken_ = 0;       // results handed out by Next()
  bool failed_ = false;     // some produce() threw: claim nothing more
  bool stop_ = false;       // destructor
  std::exception_ptr failure_;  // the error Next() handed out, rethrown by later calls
  std::vector<std::thread> workers_;  // last: started after, joined before the state above
};

// Runs produce(i) for i in [0, count) on `threads` workers and calls
// consume(i, result) on the calling thread in index order (see OrderedParallel).
template <typename Result, typename Produce, typename Consume>
void RunInOrder(int64_t count, int threads, int64_t window, Produce&& produce, Consume&& consume) {
  OrderedParallel<Result> results(count, threads, window, std::forward<Produce>(produce));
  for (int64_t i = 0; std::optional<Result> result = results.Next(); ++i) consume(i, std::move(*result));
}

}  // namespace instructflip
