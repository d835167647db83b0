// main() of the tests that run under mpirun: MPI with thread support, one
// report (rank 0's), and a job that fails if any rank's tests failed.
#include <mpi.h>

#include <gtest/gtest.h>

#include "dist/mpi_runtime.h"

int main(int argc, char** argv) {
  instructflip::MpiRuntime::Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
