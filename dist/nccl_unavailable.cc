// The NCCL entry points of a build whose LibTorch has no CUDA (Debian's CPU
// LibTorch): CMake compiles this file instead of nccl_communicator.cc.
#include "dataio/base/check.h"
#include "dist/nccl_communicator.h"

namespace instructflip {

bool NcclAvailable() { return false; }

std::unique_ptr<Communicator> MakeNcclCommunicator(MPI_Comm, const torch::Device& device, std::chrono::milliseconds) {
  IF_FAIL("device ", device, " needs the NCCL communicator, but this build has none (LibTorch without CUDA); ",
          "build against a CUDA LibTorch with NCCL, or use device: cpu");
}

}  // namespace instructflip
