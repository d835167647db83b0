#include "dist/mpi_communicator.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "dataio/base/check.h"
#include "dist/mpi_runtime.h"

namespace instructflip {

struct MpiCommunicator::Pending {
  // "all-reduce of 1048576 Float elements", formatted only for errors: a
  // string per collective is measurable latency for small messages.
  const char* operation = "";
  int64_t count = 0;
  const char* unit = "";
  std::string what() const { return std::string(operation) + " of " + std::to_string(count) + " " + unit; }
  std::function<int()> run;   // the blocking MPI call; returns its error code
  bool claimed = false;       // taken by the communication thread or the waiting caller
  bool done = false;
  int result = MPI_SUCCESS;
  Clock::time_point deadline;
};

namespace {

MPI_Datatype MpiType(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    default: IF_FAIL("MPI communicator: unsupported dtype ", t.scalar_type());
  }
}

void CheckCpuContiguous(const torch::Tensor& t, const char* op) {
  IF_REQUIRE(t.device().is_cpu() && t.is_contiguous(), "MPI communicator: ", op,
             " needs a contiguous CPU tensor (use the NCCL communicator for CUDA tensors)");
}

}  // namespace

class MpiWork : public Work {
 public:
  MpiWork(MpiCommunicator* owner, std::shared_ptr<MpiCommunicator::Pending> pending)
      : owner_(owner), pending_(std::move(pending)) {}
  void Wait() override { owner_->WaitFor(pending_); }

 private:
  MpiCommunicator* owner_;
  std::shared_ptr<MpiCommunicator::Pending> pending_;
};

MpiCommunicator::MpiCommunicator(MPI_Comm parent, std::chrono::milliseconds timeout) : timeout_(timeout) {
  IF_MPI(MPI_Comm_dup(parent, &comm_));
  IF_MPI(MPI_Comm_rank(comm_, &rank_));
  IF_MPI(MPI_Comm_size(comm_, &size_));
  // Across nodes (TCP) the niced thread lost to Open MPI's own progress and
  // moved a third of the bandwidth (1 MiB: 0.013 against raw MPI's 0.044 GB/s;
  // 16 MiB: 0.11 against 0.30, two namespaces over loopback), at parity without
  // the nice. On one node (shared memory) it costs nothing and keeps the
  // busy-polling off the compute threads' cores during backward.
  MPI_Comm node;
  IF_MPI(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  int node_size = 0;
  IF_MPI(MPI_Comm_size(node, &node_size));
  IF_MPI(MPI_Comm_free(&node));
  const int nice = node_size == size_ ? kThreadNice : 0;
  thread_ = std::thread([this, nice] { CommunicationLoop(nice); });
}

MpiCommunicator::~MpiCommunicator() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  queued_.notify_all();
  // After a timeout the caller is expected to MPI_Abort (the trainer does);
  // otherwise the stuck collective finishes when the late peer arrives.
  thread_.join();
  MPI_Comm_free(&comm_);
}

void MpiCommunicator::CommunicationLoop(int nice) {
  // Below the compute threads: a blocking MPI call busy-polls its core while it
  // waits for the peers, and during backward that core belongs to the rank's
  // compute threads. Alone (after backward, or in a benchmark) it still gets
  // the whole core, so its bandwidth does not change.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice);
  std::unique_lock<std::mutex> lock(mutex_);
  auto runnable = [&] { return stop_ || (!queue_.empty() && !queue_.front()->claimed); };
  while (true) {
    if (!queue_.empty() && queue_.front()->claimed) {
      // A caller runs the head on its own thread, where nothing can interrupt
      // a blocking MPI call: this thread is its watchdog.
      const std::shared_ptr<Pending> head = queue_.front();
      if (!queued_.wait_until(lock, head->deadline, [&] { return stop_ || queue_.empty() || queue_.front() != head; }) &&
          !head->done) {
        std::cerr << "instructflip: collective timed out on rank " << rank_ << " of " << size_ << StepContext() << ": "
                  << head->what()
                  << " did not finish within " << std::chrono::duration<double>(timeout_).count()
                  << " s (a rank died or is stuck); aborting the job\n";
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
      continue;
    }
    // A collective a caller runs on its own thread (claimed) is watched too:
    // instead of a wake-up per collective, which costs small ones a tenth of
    // their bandwidth, this thread looks every quarter timeout and then watches
    // the claimed head's deadline.
    queued_.wait_for(lock, std::max<std::chrono::milliseconds>(timeout_ / 4, std::chrono::milliseconds(10)),
                     [&] { return runnable(); });
    if (stop_ && queue_.empty()) return;  // stop requested and nothing left
    if (!queue_.empty() && !queue_.front()->claimed) RunHead(lock);
  }
}

void MpiCommunicator::RunHead(std::unique_lock<std::mutex>& lock) {
  const std::shared_ptr<Pending> head = queue_.front();
  head->claimed = true;
  lock.unlock();
  const int result = head->run();  // blocking MPI call, without the lock
  lock.lock();
  head->result = result;
  head->done = true;
  queue_.pop_front();
  finished_.notify_all();
  // Wake the thread only for work queued behind: a needless wake-up costs a
  // context switch per collective.
  if (!queue_.empty()) queued_.notify_one();
}

std::shared_ptr<MpiCommunicator::Pending> MpiCommunicator::Enqueue(Description what,
                                                                  std::function<int()> run,
                                                                  Dispatch dispatch) {
  auto pending = std::make_shared<Pending>();
  pending->operation = what.operation;
  pending->count = what.count;
  pending->unit = what.unit;
  pending->run = std::move(run);
  pending->deadline = Clock::now() + timeout_;
  std::unique_lock<std::mutex> lock(mutex_);
  const bool idle = queue_.empty();
  queue_.push_back(pending);
  if (dispatch == Dispatch::kInlineIfIdle && idle) {
    RunHead(lock);  // nothing in flight: a hand-off would cost more than the collective
  } else if (dispatch != Dispatch::kCallerWaits) {
    lock.unlock();
    queued_.notify_one();
  }
  return pending;
}

void MpiCommunicator::WaitFor(const std::shared_ptr<Pending>& pending) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!pending->claimed && queue_.front() == pending) {
    // Nothing before it and the thread has not taken it yet: run it here, in
    // order, rather than sleep through a hand-off to the (niced) thread.
    RunHead(lock);
  } else if (!pending->claimed) {
    queued_.notify_one();  // queued without a wake-up: the thread takes it in turn
  }
  if (!finished_.wait_until(lock, pending->deadline, [&] { return pending->done; })) {
    const double seconds = std::chrono::duration<double>(timeout_).count();
    IF_FAIL("collective timed out on rank ", rank_, " of ", size_, StepContext(), ": ", pending->what(),
            " did not finish within ",
            seconds, " s (a rank died or is stuck; aborting)");
  }
  if (pending->result != MPI_SUCCESS) {
    char message[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(pending->result, message, &length);
    IF_FAIL("MPI: ", pending->what(), " failed on rank ", rank_, ": ", std::string(message, length));
  }
}

int MpiCommunicator::RunAllReduce(torch::Tensor& t, ReduceOp op) {
  const int rc = MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MpiType(t), MPI_SUM, comm_);
  if (rc == MPI_SUCCESS && op == ReduceOp::kAverage && size_ > 1) t.div_(size_);
  return rc;
}

std::unique_ptr<Work> MpiCommunicator::AllReduceAsync(torch::Tensor& tensor, ReduceOp op) {
  CheckCpuContiguous(tensor, "all-reduce");
  auto pending = Enqueue({"all-reduce", tensor.numel(), c10::toString(tensor.scalar_type())},
                         [this, t = tensor, op]() mutable { return RunAllReduce(t, op); },
                         tensor.nbytes() <= kSmallMessageBytes ? Dispatch::kInlineIfIdle : Dispatch::kThread);
  return std::make_unique<MpiWork>(this, pending);
}

void MpiCommunicator::AllReduce(torch::Tensor& tensor, ReduceOp op) {
  CheckCpuContiguous(tensor, "all-reduce");
  WaitFor(Enqueue({"all-reduce", tensor.numel(), c10::toString(tensor.scalar_type())},
                  [&] { return RunAllReduce(tensor, op); },
                  Dispatch::kCallerWaits));
}

void MpiCommunicator::Broadcast(torch::Tensor& tensor, int root) {
  CheckCpuContiguous(tensor, "broadcast");
  WaitFor(Enqueue(
      {"broadcast", static_cast<int64_t>(tensor.nbytes()), "bytes"},
      [&] { return MPI_Bcast(tensor.data_ptr(), static_cast<int>(tensor.nbytes()), MPI_BYTE, root, comm_); },
      Dispatch::kCallerWaits));
}

torch::Tensor MpiCommunicator::AllGather(const torch::Tensor& tensor) {
  CheckCpuContiguous(tensor, "all-gather");
  // Row counts first (they may differ per rank), then the payload as bytes.
  torch::Tensor rows = torch::zeros({size_}, torch::kInt64);
  rows[rank_] = tensor.size(0);
  WaitFor(Enqueue({"all-gather's row counts", size_, "Long"}, [&] { return RunAllReduce(rows, ReduceOp::kSum); },
                  Dispatch::kCallerWaits));
  int64_t row_bytes = tensor.element_size();
  for (int64_t d = 1; d < tensor.dim(); ++d) row_bytes *= tensor.size(d);
  std::vector<int64_t> sizes = tensor.sizes().vec();
  sizes[0] = rows.sum().item<int64_t>();
  torch::Tensor out = torch::empty(sizes, tensor.options());
  std::vector<int> counts(size_), displacements(size_);
  int64_t offset = 0;
  for (int r = 0; r < size_; ++r) {
    counts[r] = static_cast<int>(rows[r].item<int64_t>() * row_bytes);
    displacements[r] = static_cast<int>(offset);
    offset += counts[r];
  }
  WaitFor(Enqueue(
      {"all-gather", offset, "bytes"},
      [&] {
        return MPI_Allgatherv(tensor.data_ptr(), counts[rank_], MPI_BYTE, out.data_ptr(), counts.data(),
                              displacements.data(), MPI_BYTE, comm_);
      },
      Dispatch::kCallerWaits));
  return out;
}

void MpiCommunicator::Barrier() {
  WaitFor(Enqueue({"barrier", 0, "bytes"}, [&] { return MPI_Barrier(comm_); }, Dispatch::kCallerWaits));
}

}  // namespace instructflip
