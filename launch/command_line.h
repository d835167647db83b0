// Reading `instructflip`'s command line against the subcommands' flag tables
// (commands.h). gflags stores the values (one namespace, DEFINE_* in flags.cc);
// the parsing is ours so that every mistake is an Error naming the flag and the
// value (exit 2 in main), where gflags would print and exit 1.
#pragma once

#include <string>
#include <vector>

#include "launch/commands.h"

namespace instructflip::launch {

struct Invocation {
  enum class Action { kRun, kList, kCommandHelp, kVersion };
  Action action = Action::kRun;
  std::vector<const Command*> commands;  // kRun: the one; kCommandHelp: it, or every mode of "bench"
  std::vector<std::string> positionals;
  std::vector<std::string> overrides;    // the --set values, in order
};

// Picks the subcommand of argv, applies its defaults, then the flags given.
// Throws Error for an unknown subcommand, a flag the subcommand does not take
// (naming the nearest one it does), a value of the wrong type, a missing value,
// a required flag not given, or --set where the subcommand takes none. glog's
// own flags (--v, --log_dir, ...) pass to gflags; gflags' (--flagfile,
// --fromenv) are refused, since they would set flags past the table.
// `help SUBCOMMAND` is that subcommand's --help.
Invocation ParseCommandLine(const std::vector<Command>& commands, const std::vector<std::string>& args);

// "instructflip synth --out DIR [flags]": the required flags and the positionals.
std::string UsageLine(const Command& command);
// `instructflip SUBCOMMAND --help`: usage, summary, every flag with its default.
std::string CommandHelp(const Command& command);
// `instructflip help`: every subcommand with its summary and usage line.
std::string CommandList(const std::vector<Command>& commands);

}  // namespace instructflip::launch
