#include "dist/mpi_runtime.h"

#include "dataio/base/check.h"

namespace instructflip {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  IF_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  IF_REQUIRE(provided >= MPI_THREAD_MULTIPLE, "the MPI library provides thread level ", provided,
             ", the trainer needs MPI_THREAD_MULTIPLE (", MPI_THREAD_MULTIPLE, ")");
  IF_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &world_.rank));
  IF_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_.size));
  MPI_Comm local;
  IF_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_.rank, MPI_INFO_NULL, &local));
  IF_MPI(MPI_Comm_rank(local, &world_.local_rank));
  IF_MPI(MPI_Comm_size(local, &world_.local_size));
  IF_MPI(MPI_Comm_free(&local));
}

MpiRuntime& MpiRuntime::Init(int* argc, char*** argv) {
  static MpiRuntime runtime(argc, argv);
  return runtime;
}

bool MpiRuntime::initialized() {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace instructflip
