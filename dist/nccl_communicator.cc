// NCCL backend (see nccl_communicator.h). Compiled only against a CUDA
// LibTorch; the compat header (through communicator.h) brings the CUDA
// headers, before it settles the c10/glog logging macros.
#include "dist/nccl_communicator.h"

#include <nccl.h>

#include <condition_variable>
#include <functional>
#include <list>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dataio/base/check.h"
#include "dist/mpi_communicator.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "instructflip needs NCCL >= 2.10 (ncclAvg, ncclBfloat16)"
#endif

#define IF_NCCL(call)                                                                           \
  do {                                                                                          \
    const ncclResult_t nccl_rc = (call);                                                        \
    if (nccl_rc != ncclSuccess) IF_FAIL("NCCL: ", #call, " failed: ", ncclGetErrorString(nccl_rc)); \
  } while (0)

namespace instructflip {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t NcclType(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat16: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kFloat64: return ncclFloat64;
    case torch::kInt32: return ncclInt32;
    case torch::kInt64: return ncclInt64;
    case torch::kUInt8: return ncclUint8;
    default: IF_FAIL("NCCL communicator: unsupported dtype ", t.scalar_type());
  }
}

// The caller's stream waits for `done`; the host does not block.
class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<at::cuda::CUDAEvent> done, c10::DeviceIndex device)
      : done_(std::move(done)), device_(device) {}
  void Wait() override { done_->block(c10::cuda::getCurrentCUDAStream(device_)); }

 private:
  std::shared_ptr<at::cuda::CUDAEvent> done_;
  c10::DeviceIndex device_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm parent, const torch::Device& device, std::chrono::milliseconds timeout)
      : host_(parent, timeout), device_(device.index()), timeout_(timeout) {
    IF_REQUIRE(device.is_cuda() && device.has_index(), "NCCL communicator needs a device cuda:N, got ", device);
    c10::cuda::CUDAGuard guard(device_);
    int runtime_version = 0;
    IF_NCCL(ncclGetVersion(&runtime_version));
    LOG_IF(WARNING, runtime_version / 100 != NCCL_VERSION_CODE / 100)
        << "NCCL " << runtime_version << " loaded, built against " << NCCL_VERSION_CODE
        << ": two NCCL libraries on the library path?";
    ncclUniqueId id;
    if (host_.rank() == 0) IF_NCCL(ncclGetUniqueId(&id));
    torch::Tensor id_bytes = torch::from_blob(&id, {static_cast<int64_t>(sizeof(id))}, torch::kUInt8);
    host_.Broadcast(id_bytes, 0);
    stream_.emplace(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_));
    // The watchdog already follows the initialisation: it waits for every rank.
    watchdog_ = std::thread([this] { WatchdogLoop(); });
    ncclComm_t comm = nullptr;
    try {
      HostCall init(this, "NCCL initialisation of " + std::to_string(host_.size()) + " ranks");
      IF_NCCL(ncclCommInitRank(&comm, host_.size(), id, host_.rank()));
    } catch (...) {
      StopWatchdog();
      throw;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    comm_ = comm;
  }

  ~NcclCommunicator() override {
    {
      HostCall drain(this, "finishing the NCCL stream at shutdown");
      stream_->synchronize();
    }
    StopWatchdog();
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string name() const override { return "nccl"; }

  std::unique_ptr<Work> AllReduceAsync(torch::Tensor& tensor, ReduceOp op) override {
    if (!tensor.is_cuda()) return host_.AllReduceAsync(tensor, op);
    const ncclRedOp_t nccl_op = op == ReduceOp::kAverage ? ncclAvg : ncclSum;
    return Launch("all-reduce", tensor, [&](ncclComm_t comm, cudaStream_t stream) {
      return ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), NcclType(tensor), nccl_op, comm,
                           stream);
    });
  }

  void AllReduce(torch::Tensor& tensor, ReduceOp op) override {
    if (!tensor.is_cuda()) return host_.AllReduce(tensor, op);
    AllReduceAsync(tensor, op)->Wait();
  }

  void Broadcast(torch::Tensor& tensor, int root) override {
    if (!tensor.is_cuda()) return host_.Broadcast(tensor, root);
    Launch("broadcast", tensor, [&](ncclComm_t comm, cudaStream_t stream) {
      return ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), NcclType(tensor), root, comm,
                           stream);
    })->Wait();
  }

  // Gathered tensors are evaluation scores and checksums (kilobytes): through
  // the host, which also handles rows that differ per rank.
  torch::Tensor AllGather(const torch::Tensor& tensor) override {
    if (!tensor.is_cuda()) return host_.AllGather(tensor);
    return host_.AllGather(tensor.cpu().contiguous()).to(tensor.device());
  }

  void Barrier() override { host_.Barrier(); }

 private:
  // Something the watchdog follows: a collective on the stream (`done` set),
  // or a host call still inside NCCL or CUDA (`done` null), which can block
  // on a dead peer too (NCCL connects lazily, at the first collective).
  struct InFlight {
    std::shared_ptr<at::cuda::CUDAEvent> done;
    std::string what;
    Clock::time_point deadline;
  };
  using Entry = std::list<InFlight>::iterator;

  // Follows a host call from construction; Finish(done) hands it over to the
  // stream's event, and a call that ends otherwise (done, or thrown) is dropped.
  class HostCall {
   public:
    HostCall(NcclCommunicator* owner, std::string what) : owner_(owner) {
      std::lock_guard<std::mutex> lock(owner_->mutex_);
      entry_ = owner_->in_flight_.insert(owner_->in_flight_.end(),
                                         {nullptr, std::move(what), Clock::now() + owner_->timeout_});
    }
    void Finish(std::shared_ptr<at::cuda::CUDAEvent> done) {
      std::lock_guard<std::mutex> lock(owner_->mutex_);
      entry_->done = std::move(done);
      finished_ = true;
    }
    ~HostCall() {
      if (finished_) return;
      std::lock_guard<std::mutex> lock(owner_->mutex_);
      owner_->in_flight_.erase(entry_);
    }

   private:
    NcclCommunicator* owner_;
    Entry entry_;
    bool finished_ = false;
  };

  std::unique_ptr<Work> Launch(const char* operation, const torch::Tensor& tensor,
                               const std::function<ncclResult_t(ncclComm_t, cudaStream_t)>& call) {
    IF_REQUIRE(tensor.device().index() == device_ && tensor.is_contiguous(), "NCCL communicator: ", operation,
               " needs a contiguous tensor on cuda:", int(device_), ", got one on ", tensor.device());
    c10::cuda::CUDAGuard guard(device_);
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    {
      // One NCCL call at a time: gradient hooks run on autograd's device thread.
      std::lock_guard<std::mutex> launch(launch_mutex_);
      HostCall host_call(this, std::string(operation) + " of " + std::to_string(tensor.numel()) + " " +
                                   c10::toString(tensor.scalar_type()) + " elements");
      at::cuda::CUDAEvent ready;
      ready.record(c10::cuda::getCurrentCUDAStream(device_));
      ready.block(*stream_);  // start after the kernels that produce `tensor`
      IF_NCCL(call(comm_, stream_->stream()));
      done->record(*stream_);
      host_call.Finish(done);
    }
    // Memory freed by the caller is not handed out again before the collective is done with it.
    c10::cuda::CUDACachingAllocator::recordStream(tensor.storage().data_ptr(), *stream_);
    changed_.notify_one();
    return std::make_unique<NcclWork>(std::move(done), device_);
  }

  void StopWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    watchdog_.join();
  }

  void WatchdogLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      changed_.wait_for(lock, std::chrono::milliseconds(100));
      try {
        for (auto it = in_flight_.begin(); it != in_flight_.end();)
          it = it->done && it->done->query() ? in_flight_.erase(it) : std::next(it);
        ncclResult_t async_error = ncclSuccess;
        if (comm_ != nullptr) ncclCommGetAsyncError(comm_, &async_error);
        if (async_error != ncclSuccess)
          AbortJob(std::string("asynchronous NCCL error: ") + ncclGetErrorString(async_error));
        const Clock::time_point now = Clock::now();
        for (const InFlight& item : in_flight_)
          if (now > item.deadline)
            AbortJob(item.what + " did not finish within " +
                     std::to_string(std::chrono::duration<double>(timeout_).count()) + " s (a rank died or is stuck)");
      } catch (const std::exception& e) {  // a sticky CUDA error, thrown by query()
        AbortJob(std::string("CUDA error: ") + e.what());
      }
    }
  }

  [[noreturn]] void AbortJob(const std::string& why) {
    std::cerr << "instructflip: NCCL collective failed on rank " << rank() << " of " << size() << StepContext()
              << " (cuda:" << int(device_) << "): " << why << "; aborting the job\n";
    if (comm_ != nullptr) ncclCommAbort(comm_);
    MPI_Abort(MPI_COMM_WORLD, 3);
    std::abort();
  }

  MpiCommunicator host_;
  c10::DeviceIndex device_;
  std::chrono::milliseconds timeout_;
  std::optional<c10::cuda::CUDAStream> stream_;
  std::mutex launch_mutex_;           // serialises NCCL host calls
  std::mutex mutex_;                  // guards what follows
  ncclComm_t comm_ = nullptr;         // set once initialised
  std::condition_variable changed_;
  std::list<InFlight> in_flight_;
  bool stop_ = false;
  std::thread watchdog_;
};

}  // namespace

bool NcclAvailable() { return true; }

std::unique_ptr<Communicator> MakeNcclCommunicator(MPI_Comm parent, const torch::Device& device,
                                                   std::chrono::milliseconds timeout) {
  return std::make_unique<NcclCommunicator>(parent, device, timeout);
}

}  // namespace instructflip
