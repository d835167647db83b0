// Communicator for CUDA tensors over NCCL, built where LibTorch has CUDA
// (otherwise MakeNcclCommunicator explains that the build has no NCCL).
//
// CUDA tensors go through NCCL on the communicator's own high-priority stream:
// a collective starts after the work already queued on the caller's current
// stream (an event), and Work::Wait() makes the caller's current stream wait
// for it without blocking the host, as PyTorch's ProcessGroupNCCL does, so
// gradient buckets reduce while backward kernels run. CPU tensors (token
// counts, stop flags, evaluation scores) and barriers go through an inner
// MpiCommunicator. NCCL's unique id travels by MPI broadcast from rank 0.
//
// A watchdog thread follows every collective: past the timeout, or on an
// asynchronous NCCL error, it prints the operation and rank, aborts the NCCL
// communicator and ends the job (MPI_Abort), since a kernel waiting for a
// dead peer never returns.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>

#include "dist/communicator.h"

namespace instructflip {

// Whether this build has the NCCL backend.
bool NcclAvailable();

// Collective over every process of `parent`, each on its own CUDA `device`
// (cuda:N; NCCL refuses two ranks on one GPU). Throws on a build without NCCL.
std::unique_ptr<Communicator> MakeNcclCommunicator(MPI_Comm parent, const torch::Device& device,
                                                   std::chrono::milliseconds timeout);

}  // namespace instructflip
