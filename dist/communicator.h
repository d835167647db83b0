// The communication interface of the distributed trainer (STYLE habit 9): a
// small set of collectives behind one class, with a single-process
// implementation (tests and 1-GPU runs), MPI for CPU tensors (non-blocking
// MPI_Iallreduce) and NCCL for CUDA tensors where built with NCCL.
//
// Every collective must be called in the same order on every rank (MPI and
// NCCL match them by order); the reducer guarantees that for gradients.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "dataio/base/torch_compat.h"

namespace instructflip {

enum class ReduceOp { kSum, kAverage };

// An outstanding asynchronous collective.
class Work {
 public:
  virtual ~Work() = default;
  // The result is ready for the caller's next operations once this returns.
  // CPU (MPI): blocks until done; throws instructflip::Error if the collective
  // failed or the communicator's timeout expired (naming operation and rank).
  // A collective that runs on the waiting thread itself (still queued when
  // waited for) cannot be interrupted: past the timeout the watchdog aborts
  // the job with that message instead.
  // CUDA (NCCL): the caller's current stream waits for the collective, the host
  // does not, as with PyTorch's ProcessGroupNCCL (read results with
  // stream-ordered ops, .cpu() or .item()); failures and timeouts abort the job
  // from the communicator's watchdog.
  virtual void Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"

  // In place; `tensor` must stay alive and untouched until Wait() returns.
  virtual std::unique_ptr<Work> AllReduceAsync(torch::Tensor& tensor, ReduceOp op) = 0;
  virtual void AllReduce(torch::Tensor& tensor, ReduceOp op) { AllReduceAsync(tensor, op)->Wait(); }
  virtual void Broadcast(torch::Tensor& tensor, int root) = 0;
  // Concatenation along dim 0 of every rank's tensor, in rank order (the
  // tensors may have different lengths along dim 0).
  virtual torch::Tensor AllGather(const torch::Tensor& tensor) = 0;
  virtual void Barrier() = 0;

  // The training step the caller is in, for timeout and failure messages
  // ("... at step 17"); -1: none (start-up, evaluation).
  void SetStep(int64_t step) { step_.store(step, std::memory_order_relaxed); }
  std::string StepContext() const {
    const int64_t step = step_.load(std::memory_order_relaxed);
    return step >= 0 ? " at step " + std::to_string(step) : "";
  }

 private:
  std::atomic<int64_t> step_{-1};
};

std::unique_ptr<Communicator> MakeSingleProcessCommunicator();

}  // namespace instructflip
