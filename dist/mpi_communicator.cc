#include "dist/mpi_communicator.h"

#include <sstream>

#include "dataio/check.h"
#include "dist/mpi_runtime.h"

namespace instructflip {

struct MpiCommunicator::Pending {
  std::string what;           // "all-reduce of 1048576 Float elements"
  std::function<int()> run;   // the blocking MPI call; returns its error code
  bool claimed = false;       // taken by the communication thread or the waiting caller
  bool caller_runs = false;   // a blocking collective: its caller may run it inline
  bool done = false;
  int result = MPI_SUCCESS;
  std::chrono::steady_clock::time_point deadline;
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
  thread_ = std::thread([this] { CommunicationLoop(); });
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

void MpiCommunicator::CommunicationLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    queued_.wait(lock, [&] { return stop_ || (!queue_.empty() && !queue_.front()->claimed); });
    if (queue_.empty()) return;  // stop requested and nothing left
    RunHead(lock);
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
  queued_.notify_one();  // whatever was queued behind it
}

std::shared_ptr<MpiCommunicator::Pending> MpiCommunicator::Enqueue(const std::string& what, std::function<int()> run,
                                                                  bool wake) {
  auto pending = std::make_shared<Pending>();
  pending->what = what;
  pending->run = std::move(run);
  pending->deadline = std::chrono::steady_clock::now() + timeout_;
  pending->caller_runs = !wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(pending);
  }
  if (wake) queued_.notify_one();
  return pending;
}

void MpiCommunicator::WaitFor(const std::shared_ptr<Pending>& pending) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!pending->claimed && pending->caller_runs && queue_.front() == pending) {
    RunHead(lock);  // nothing before it: run it here, in order, without a thread hand-off
  } else if (!pending->claimed) {
    queued_.notify_one();  // queued without a wake-up: the thread takes it in turn
  }
  if (!finished_.wait_until(lock, pending->deadline, [&] { return pending->done; })) {
    const double seconds = std::chrono::duration<double>(timeout_).count();
    IF_FAIL("collective timed out on rank ", rank_, " of ", size_, ": ", pending->what, " did not finish within ",
            seconds, " s (a rank died or is stuck; aborting)");
  }
  if (pending->result != MPI_SUCCESS) {
    char message[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(pending->result, message, &length);
    IF_FAIL("MPI: ", pending->what, " failed on rank ", rank_, ": ", std::string(message, length));
  }
}

std::unique_ptr<Work> MpiCommunicator::AllReduceAsync(torch::Tensor& tensor, ReduceOp op) {
  CheckCpuContiguous(tensor, "all-reduce");
  std::ostringstream what;
  what << "all-reduce of " << tensor.numel() << " " << tensor.scalar_type() << " elements";
  const int world = size_;
  auto pending = Enqueue(what.str(), [this, t = tensor, op, world]() mutable {
    const int rc = MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MpiType(t), MPI_SUM, comm_);
    if (rc == MPI_SUCCESS && op == ReduceOp::kAverage && world > 1) t.div_(world);
    return rc;
  });
  return std::make_unique<MpiWork>(this, pending);
}

void MpiCommunicator::AllReduce(torch::Tensor& tensor, ReduceOp op) {
  CheckCpuContiguous(tensor, "all-reduce");
  std::ostringstream what;
  what << "all-reduce of " << tensor.numel() << " " << tensor.scalar_type() << " elements";
  WaitFor(Enqueue(
      what.str(),
      [&] {
        const int rc = MPI_Allreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()),
                                     MpiType(tensor), MPI_SUM, comm_);
        if (rc == MPI_SUCCESS && op == ReduceOp::kAverage && size_ > 1) tensor.div_(size_);
        return rc;
      },
      /*wake=*/false));
}

void MpiCommunicator::Broadcast(torch::Tensor& tensor, int root) {
  CheckCpuContiguous(tensor, "broadcast");
  WaitFor(Enqueue(
      "broadcast of " + std::to_string(tensor.nbytes()) + " bytes",
      [&] { return MPI_Bcast(tensor.data_ptr(), static_cast<int>(tensor.nbytes()), MPI_BYTE, root, comm_); },
      /*wake=*/false));
}

torch::Tensor MpiCommunicator::AllGather(const torch::Tensor& tensor) {
  CheckCpuContiguous(tensor, "all-gather");
  // Row counts first (they may differ per rank), then the payload as bytes.
  torch::Tensor rows = torch::zeros({size_}, torch::kInt64);
  rows[rank_] = tensor.size(0);
  AllReduce(rows, ReduceOp::kSum);
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
      "all-gather of " + std::to_string(offset) + " bytes",
      [&] {
        return MPI_Allgatherv(tensor.data_ptr(), counts[rank_], MPI_BYTE, out.data_ptr(), counts.data(),
                              displacements.data(), MPI_BYTE, comm_);
      },
      /*wake=*/false));
  return out;
}

void MpiCommunicator::Barrier() {
  WaitFor(Enqueue("barrier", [&] { return MPI_Barrier(comm_); }, /*wake=*/false));
}

}  // namespace instructflip
