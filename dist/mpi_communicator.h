// Communicator over MPI for CPU tensors.
//
// Every collective runs on one communication thread, in the order it was
// requested (as Horovod's background thread): a bucket launched during
// backward proceeds while backward goes on, each collective uses MPI's
// blocking (tuned) algorithms, and the single queue gives every rank the same
// order of collectives on the private communicator. A Wait() that does not see
// its collective finish within `timeout` throws naming the operation, its size
// and the rank (the watchdog); the caller then aborts the job, since a blocking
// MPI call cannot be cancelled. A blocking collective with nothing queued
// before it runs on the caller's thread, and so does a small asynchronous
// all-reduce (a thread hand-off costs more than it does); the idle
// communication thread is then the watchdog: past the deadline it prints the
// operation and rank and aborts the job (MPI_Abort).
#pragma once

#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "dist/communicator.h"

namespace instructflip {

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm parent, std::chrono::milliseconds timeout);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  std::unique_ptr<Work> AllReduceAsync(torch::Tensor& tensor, ReduceOp op) override;
  void AllReduce(torch::Tensor& tensor, ReduceOp op) override;
  void Broadcast(torch::Tensor& tensor, int root) override;
  torch::Tensor AllGather(const torch::Tensor& tensor) override;
  void Barrier() override;

  struct Pending;  // one queued collective
  using Clock = std::chrono::steady_clock;
  // Asynchronous all-reduces up to this size run inline when the queue is idle.
  static constexpr int64_t kSmallMessageBytes = 64 << 10;
  // Niceness of the communication thread (Linux: per thread) when every rank
  // is on this node; across nodes it keeps the default priority (see the .cc).
  static constexpr int kThreadNice = 10;

 private:
  void CommunicationLoop(int nice);
  // Runs the queue's head (mutex held on entry and exit, released during the call).
  void RunHead(std::unique_lock<std::mutex>& lock);
  // How a queued collective gets run:
  //   kThread        by the communication thread (asynchronous, overlaps the caller)
  //   kCallerWaits   not announced to the thread: the blocking caller runs it
  //                  itself in WaitFor when nothing is queued before it, else
  //                  the thread in turn
  //   kInlineIfIdle  right here when nothing is in flight (small asynchronous
  //                  messages: a thread hand-off costs more than they do), else kThread
  // Whatever the dispatch, a caller that waits for a collective the thread has
  // not yet taken from the head of the queue runs it itself.
  enum class Dispatch { kThread, kCallerWaits, kInlineIfIdle };
  struct Description {
    const char* operation;
    int64_t count;
    const char* unit;
  };
  std::shared_ptr<Pending> Enqueue(Description what, std::function<int()> run, Dispatch dispatch);
  int RunAllReduce(torch::Tensor& tensor, ReduceOp op);
  void WaitFor(const std::shared_ptr<Pending>& pending);
  friend class MpiWork;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable queued_, finished_;
  std::deque<std::shared_ptr<Pending>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace instructflip
