// MPI bootstrap: MPI_Init_thread (MPI_THREAD_MULTIPLE: the gradient reducer
// launches collectives from autograd hooks while a progress thread polls
// them), world rank/size, and the local rank from MPI's shared-memory split
// (not only environment variables, which differ between mpirun and srun).
#pragma once

#include <mpi.h>

#include <string>

namespace instructflip {

#define IF_MPI(call)                                                                                      \
  do {                                                                                                    \
    const int mpi_rc = (call);                                                                            \
    if (mpi_rc != MPI_SUCCESS) {                                                                          \
      char mpi_message[MPI_MAX_ERROR_STRING];                                                             \
      int mpi_length = 0;                                                                                 \
      MPI_Error_string(mpi_rc, mpi_message, &mpi_length);                                                 \
      IF_FAIL("MPI: ", #call, " failed: ", std::string(mpi_message, mpi_length));                         \
    }                                                                                                     \
  } while (0)

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes of this node
  int local_size = 1;
};

class MpiRuntime {
 public:
  // Initialises MPI once per process (later calls return the same runtime).
  static MpiRuntime& Init(int* argc, char*** argv);
  static bool initialized();
  const WorldInfo& world() const { return world_; }
  ~MpiRuntime();

 private:
  MpiRuntime(int* argc, char*** argv);
  WorldInfo world_;
};

}  // namespace instructflip
