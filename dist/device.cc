#include "dist/device.h"

#include "dataio/base/check.h"

namespace instructflip {

torch::Device SelectDevice(DeviceRequest requested, const WorldInfo& world, const std::string& where) {
  const int64_t gpus = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (requested == DeviceRequest::kCpu || (requested == DeviceRequest::kAuto && gpus == 0)) return torch::kCPU;
  IF_REQUIRE(gpus > 0, where, ": device cuda, but LibTorch sees no CUDA device (a CPU-only LibTorch, no GPU, or ",
             "CUDA_VISIBLE_DEVICES empty); use device: cpu");
  // NCCL refuses two ranks on one GPU, and sharing one would only slow both.
  IF_REQUIRE(world.local_size <= gpus, where, ": ", world.local_size, " ranks on this node but ", gpus,
             " CUDA devices; start at most one rank per GPU (mpirun -np / srun --ntasks-per-node)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank));
}

}  // namespace instructflip
