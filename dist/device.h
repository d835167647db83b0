// Which device a rank computes on: one GPU per local rank (the rank's index
// among the processes of its node, from MPI's shared-memory split).
#pragma once

#include <string>

#include "dataio/base/choices.h"
#include "dataio/base/torch_compat.h"
#include "dist/mpi_runtime.h"

namespace instructflip {

// kCpu; kCuda (GPU `local_rank`; an error if LibTorch sees no GPU or the node
// runs more ranks than it has GPUs); kAuto (cuda when LibTorch sees a GPU, else cpu).
enum class DeviceRequest { kAuto, kCpu, kCuda };
inline const Choices<DeviceRequest> kDeviceRequests{
    {"auto", DeviceRequest::kAuto}, {"cpu", DeviceRequest::kCpu}, {"cuda", DeviceRequest::kCuda}};

// `where` names the setting in errors.
torch::Device SelectDevice(DeviceRequest requested, const WorldInfo& world, const std::string& where);

}  // namespace instructflip
