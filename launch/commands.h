// The `instructflip` command: one entry per subcommand. Each subcommand turns
// the flags it accepts into the options structs of the layer it drives
// (nothing below launch/ reads flags or the environment).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace instructflip::launch {

// A flag as one subcommand uses it. The flag is defined once in flags.cc (gflags
// keeps one namespace per binary); what it means here, its default here and
// whether it is required belong to the subcommand. This table drives parsing
// (a flag not listed is refused, a required one missing is an error), the
// defaults and `--help` (command_line.h).
struct FlagUse {
  std::string name;                          // gflags name, with '_' ("per_domain")
  std::string value;                         // placeholder in usage and help ("DIR"); "" for a switch
  std::string help;                          // what it does for this subcommand
  std::optional<std::string> default_value;  // this subcommand's default, else flags.cc's
  bool required = false;
  std::string absent;  // what leaving it out means, shown as its default (else the default value)

  // Optional("ranks", "N", "MPI ranks per job").Absent("the protocol's ranks")
  FlagUse Absent(std::string meaning) const {
    FlagUse copy = *this;
    copy.absent = std::move(meaning);
    return copy;
  }
};
inline FlagUse Required(std::string name, std::string value, std::string help) {
  return {std::move(name), std::move(value), std::move(help), std::nullopt, true};
}
inline FlagUse Optional(std::string name, std::string value, std::string help,
                        std::optional<std::string> default_value = std::nullopt) {
  return {std::move(name), std::move(value), std::move(help), std::move(default_value), false};
}
inline FlagUse Switch(std::string name, std::string help) { return {std::move(name), "", std::move(help)}; }

struct Command {
  std::string name;        // "synth"; a mode of one is a second word: "bench step"
  std::string arguments;   // positional arguments in the usage line ("RUN_DIR"); "" for none
  std::string summary;     // one line
  std::vector<FlagUse> flags;
  bool takes_overrides = false;  // --set KEY=VALUE, repeatable (configuration overrides)
  std::string notes;             // more usage lines (other forms, mpirun), may be empty
  std::function<int(const std::vector<std::string>& positionals)> run;
};

// Listed by `instructflip help` in this order.
std::vector<Command> DataCommands();     // synth, ingest, store
std::vector<Command> TrainCommands();    // train, eval
std::vector<Command> LodoCommands();     // lodo, demo, report
std::vector<Command> PredictCommands();  // predict, export
std::vector<Command> MetricsCommands();  // metrics
std::vector<Command> BenchCommands();    // bench data, bench step, bench allreduce

// Exit code of a run stopped by SIGUSR1/SIGTERM/SIGINT after its checkpoint: the job
// should be requeued and resumed (slurm/train.sbatch does).
inline constexpr int kExitRequeue = 3;

// The `--set key=value` arguments of this invocation (repeatable; collected by main).
const std::vector<std::string>& SetOverrides();

}  // namespace instructflip::launch
