// Which device a rank computes on: one GPU per local rank (the rank's index
// among the processes of its node, from MPI's shared-memory split).
#pragma once

#include <string>

#include "dataio/base/torch_compat.h"
#include "dist/mpi_runtime.h"

namespace instructflip {

// `requested`: "cpu"; "cuda" (GPU `local_rank`; an error if LibTorch sees no
// GPU or the node runs more ranks than it has GPUs); "auto" (cuda when LibTorch
// sees a GPU, else cpu). `where` names the setting in errors.
torch::Device SelectDevice(const std::string& requested, const WorldInfo& world, const std::string& where);

}  // namespace instructflip
