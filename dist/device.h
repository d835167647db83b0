// Which device a rank computes on: one GPU per local rank (the rank's index
// among the processes of its node, from MPI's shared-memory split).
#pragma once

#include <optional>
#include <string>

#include "dataio/base/torch_compat.h"
#include "dist/mpi_runtime.h"

namespace instructflip {

// kCpu; kCuda (GPU `local_rank`; an error if LibTorch sees no GPU or the node
// runs more ranks than it has GPUs); kAuto (cuda when LibTorch sees a GPU, else cpu).
enum class DeviceRequest { kAuto, kCpu, kCuda };
std::optional<DeviceRequest> FindDeviceRequest(const std::string& name);  // "auto" | "cpu" | "cuda"

// `where` names the setting in errors.
torch::Device SelectDevice(DeviceRequest requested, const WorldInfo& world, const std::string& where);

}  // namespace instructflip
