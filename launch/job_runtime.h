// What every MPI job subcommand (train, eval, lodo --job) shares: the
// communicator for the world it was launched in, one error policy (an error on
// one rank of many aborts the job instead of leaving the others waiting in a
// collective) and the stop flag set by SIGUSR1/SIGTERM/SIGINT (Slurm's pre-emption
// warning, scancel): every rank stops at the same step, checkpoints and the
// command exits kExitRequeue.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataio/base/file_util.h"
#include "dist/communicator.h"
#include "dist/mpi_runtime.h"
#include "launch/train_config_yaml.h"

namespace instructflip::launch {

// Picks this rank's device from the configuration's `device` (stored in
// config->trainer.device and made the current one) and returns its
// communicator: NCCL on a GPU, MPI between CPU ranks, none for one CPU process.
std::unique_ptr<Communicator> StartRank(const WorldInfo& world, TrainConfig* config);

// Runs `body`; with more than one rank, an exception aborts the whole job (MPI_Abort).
int AbortJobOnError(const char* command, const WorldInfo& world, const std::function<int()>& body);

// InstallStopSignals installs SIGUSR1/SIGTERM/SIGINT handlers (before MPI
// starts); ConnectStopSignals hands their flag and the step-loop hook to a
// trainer's options. In the step loop a signal sets
// options->stop_requested: every rank stops at the same step with a checkpoint
// (exit kExitRequeue). Outside it (start-up: MPI, store, model, weights, T5
// warm-up, which may take minutes; evaluation after training) there is nothing
// a checkpoint would keep, so a signal ends the rank that gets it at once, also
// with kExitRequeue: a requeued job or a rerun with --resume auto starts where
// this one was. A flag set during the last step is left for the caller to act
// on (StopWasRequested()).
void InstallStopSignals();
void ConnectStopSignals(TrainerOptions* options);
bool StopWasRequested();

// Crash tests: with INSTRUCTFLIP_CRASH_AT=STEP:POINT in the environment, a
// checkpoint fault point (trainer/checkpoint.h) that matches kills the process
// with SIGKILL there, as a node failure would. Empty function otherwise.
std::function<void(int64_t, const std::string&)> CrashPointFromEnvironment();

// Every rank must run what rank 0 runs (mpirun's colon syntax, or a node with
// another copy of the store, would otherwise train a different model and exit 0):
// rank 0 broadcasts `identity` (the resolved configuration and the store
// manifest's CRC32C; StartRank does this), and every rank stops with an Error if
// any differs, the differing ones naming the changed keys.
void CheckSameConfigurationOnEveryRank(const std::string& identity, Communicator* communicator);

}  // namespace instructflip::launch
