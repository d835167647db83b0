// Run under `mpirun -np 2 collective_timeout_test OP` (collective_timeout_test.sh):
// rank 1 joins the collective OP 4 s late and rank 0's communicator allows 1 s.
// Every blocking collective, also one the caller runs on its own thread, is
// under the watchdog, which must end the job after about 1 s naming OP and the
// step. If OP
// returns instead, this prints "returned" and exits 0: the failure the script
// looks for.
#include <mpi.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "dist/mpi_communicator.h"
#include "dist/mpi_runtime.h"

int main(int argc, char** argv) {
  using namespace instructflip;
  MpiRuntime::Init(&argc, &argv);
  if (argc != 2) {
    std::cerr << "usage: collective_timeout_test barrier|broadcast|all-gather|all-reduce\n";
    return 2;
  }
  const std::string op = argv[1];
  MpiCommunicator comm(MPI_COMM_WORLD, std::chrono::seconds(1));
  comm.SetStep(17);  // as the trainer does: the message names the step
  if (comm.rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(4));
  torch::Tensor t = torch::ones({4}, torch::kFloat64);
  if (op == "barrier") {
    comm.Barrier();
  } else if (op == "broadcast") {
    comm.Broadcast(t, 1);  // from the late rank: the root of a broadcast need not wait
  } else if (op == "all-gather") {
    comm.AllGather(t);
  } else if (op == "all-reduce") {
    comm.AllReduce(t, ReduceOp::kSum);  // small and blocking: run on the caller's thread
  } else {
    std::cerr << "unknown operation " << op << "\n";
    return 2;
  }
  std::cout << "returned\n";
  return 0;
}
