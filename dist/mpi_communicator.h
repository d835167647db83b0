// Communicator over MPI for CPU tensors.
//
// All-reduce is non-blocking (MPI_Iallreduce on a private duplicate of the
// world communicator). A progress thread polls the outstanding requests
// (Open MPI advances non-blocking collectives only inside MPI calls, so
// without it a bucket launched during backward would not move until the
// final wait) and doubles as the watchdog: a collective that does not finish
// within `timeout` fails its Wait() with a message naming the operation, its
// size and the rank; the caller then aborts the job. A thread in Wait() polls
// the requests itself, so a blocking wait costs what a blocking MPI call does.
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
  void Broadcast(torch::Tensor& tensor, int root) override;
  torch::Tensor AllGather(const torch::Tensor& tensor) override;
  void Barrier() override;

  struct Pending;  // one outstanding collective

 private:
  void ProgressLoop();
  // Tests the oldest outstanding request (mutex held); true if one completed.
  bool PollOnce();
  // Starts a non-blocking collective under the lock and hands it to the progress thread.
  std::shared_ptr<Pending> Start(const std::string& what, const std::function<int(MPI_Request*)>& launch,
                                 std::function<void()> on_done = nullptr);
  void WaitFor(const std::shared_ptr<Pending>& pending);
  friend class MpiWork;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<Pending>> pending_;
  bool stop_ = false;
  int waiters_ = 0;  // threads in WaitFor, which then drive progress themselves
  std::thread progress_;
};

}  // namespace instructflip
