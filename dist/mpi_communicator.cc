#include "dist/mpi_communicator.h"

#include <sstream>

#include "dataio/check.h"
#include "dist/mpi_runtime.h"

namespace instructflip {

struct MpiCommunicator::Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  std::string what;                // "all-reduce of 1048576 Float elements"
  std::function<void()> on_done;   // runs on the progress thread at completion
  bool done = false;
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
  progress_ = std::thread([this] { ProgressLoop(); });
}

MpiCommunicator::~MpiCommunicator() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  progress_.join();
  if (pending_.empty()) MPI_Comm_free(&comm_);  // a timed-out request would hang the free
}

std::shared_ptr<MpiCommunicator::Pending> MpiCommunicator::Start(
    const std::string& what, const std::function<int(MPI_Request*)>& launch, std::function<void()> on_done) {
  auto pending = std::make_shared<Pending>();
  pending->what = what;
  pending->on_done = std::move(on_done);
  pending->deadline = std::chrono::steady_clock::now() + timeout_;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int rc = launch(&pending->request);
    IF_REQUIRE(rc == MPI_SUCCESS, "MPI: starting ", what, " failed on rank ", rank_);
    pending_.push_back(pending);
  }
  // No wake-up here: a waiter polls by itself, and the progress thread looks
  // every millisecond; waking it per call costs more than small messages take.
  return pending;
}

std::unique_ptr<Work> MpiCommunicator::AllReduceAsync(torch::Tensor& tensor, ReduceOp op) {
  CheckCpuContiguous(tensor, "all-reduce");
  std::ostringstream what;
  what << "all-reduce of " << tensor.numel() << " " << tensor.scalar_type() << " elements";
  std::function<void()> average;
  if (op == ReduceOp::kAverage && size_ > 1) average = [t = tensor, n = size_]() mutable { t.div_(n); };
  auto pending = Start(
      what.str(),
      [&](MPI_Request* request) {
        return MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()), MpiType(tensor),
                              MPI_SUM, comm_, request);
      },
      std::move(average));
  return std::make_unique<MpiWork>(this, pending);
}

bool MpiCommunicator::PollOnce() {
  if (pending_.empty()) return false;
  // Requests complete in launch order for one communicator: test the oldest.
  const std::shared_ptr<Pending> head = pending_.front();
  int flag = 0;
  MPI_Test(&head->request, &flag, MPI_STATUS_IGNORE);
  if (!flag) return false;
  if (head->on_done) head->on_done();
  head->done = true;
  pending_.pop_front();
  changed_.notify_all();
  return true;
}

void MpiCommunicator::ProgressLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    // A waiting thread drives progress itself (lowest latency); this thread
    // only advances collectives nobody waits for yet, e.g. buckets launched
    // during backward, polling gently so it does not steal a core.
    if (pending_.empty() || waiters_ > 0) {
      changed_.wait_for(lock, std::chrono::milliseconds(1));
      continue;
    }
    if (PollOnce()) continue;
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    lock.lock();
  }
}

void MpiCommunicator::WaitFor(const std::shared_ptr<Pending>& pending) {
  std::unique_lock<std::mutex> lock(mutex_);
  ++waiters_;
  while (!pending->done && std::chrono::steady_clock::now() < pending->deadline) {
    if (!PollOnce()) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
  --waiters_;
  if (!pending->done) {
    const double seconds = std::chrono::duration<double>(timeout_).count();
    IF_FAIL("collective timed out on rank ", rank_, " of ", size_, ": ", pending->what, " did not finish within ",
            seconds, " s (a rank died or is stuck; aborting)");
  }
}

void MpiCommunicator::Broadcast(torch::Tensor& tensor, int root) {
  CheckCpuContiguous(tensor, "broadcast");
  WaitFor(Start("broadcast of " + std::to_string(tensor.nbytes()) + " bytes", [&](MPI_Request* request) {
    return MPI_Ibcast(tensor.data_ptr(), static_cast<int>(tensor.nbytes()), MPI_BYTE, root, comm_, request);
  }));
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
  WaitFor(Start("all-gather of " + std::to_string(offset) + " bytes", [&](MPI_Request* request) {
    return MPI_Iallgatherv(tensor.data_ptr(), counts[rank_], MPI_BYTE, out.data_ptr(), counts.data(),
                           displacements.data(), MPI_BYTE, comm_, request);
  }));
  return out;
}

void MpiCommunicator::Barrier() {
  WaitFor(Start("barrier", [&](MPI_Request* request) { return MPI_Ibarrier(comm_, request); }));
}

}  // namespace instructflip
