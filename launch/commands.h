// The `instructflip` command: one entry per subcommand. Each subcommand turns
// the flags it accepts into the options structs of the layer it drives
// (nothing below launch/ reads flags or the environment).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace instructflip::launch {

struct Command {
  std::string name;
  std::string usage;                // one line: arguments and flags
  std::string summary;              // one line
  std::vector<std::string> flags;   // flags this subcommand accepts
  std::function<int(const std::vector<std::string>& args)> run;  // args: positionals
};

// Registered in the order `instructflip help` lists them.
std::vector<Command> DataCommands();   // synth, ingest, store
std::vector<Command> TrainCommands();  // train
std::vector<Command> MetricsCommands();  // metrics
std::vector<Command> LodoCommands();     // lodo, demo, report
std::vector<Command> BenchCommands();  // bench

// Exit code of a run stopped by SIGUSR1/SIGTERM after its checkpoint: the job
// should be requeued and resumed (slurm/train.sbatch does).
inline constexpr int kExitRequeue = 3;

// The `--set key=value` arguments of this invocation (repeatable; collected by main).
const std::vector<std::string>& SetOverrides();

}  // namespace instructflip::launch
