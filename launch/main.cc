// instructflip: entry point. `instructflip help` lists the subcommands,
// `instructflip <subcommand> --help` (or -h) one subcommand's flags with their
// defaults, `instructflip --version` the version and git revision. Errors from
// bad input surface here once, as one line on stderr, exit code 2 (with
// --verbose, any subcommand, also the source line that raised them).
#include <iostream>

#include <gflags/gflags.h>
#include <c10/util/Exception.h>
#include <glog/logging.h>

#include "dataio/base/check.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/flags.h"
#include "launch/version.h"

namespace {

std::vector<std::string> g_set_overrides;

}  // namespace

const std::vector<std::string>& instructflip::launch::SetOverrides() { return g_set_overrides; }

int main(int argc, char** argv) {
  using namespace instructflip::launch;
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  std::vector<Command> commands;
  for (auto group : {DataCommands(), TrainCommands(), LodoCommands(), PredictCommands(), MetricsCommands(), BenchCommands()})
    commands.insert(commands.end(), group.begin(), group.end());

  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string name = args.empty() ? "" : args[0];
  auto fail = [&](const char* what) {
    std::cerr << "instructflip" << (name.empty() || name[0] == '-' ? "" : " " + name) << ": error: " << what << "\n";
    return 2;
  };
  try {
    const Invocation invocation = ParseCommandLine(commands, args);
    switch (invocation.action) {
      case Invocation::Action::kList:
        std::cout << CommandList(commands);
        return 0;
      case Invocation::Action::kVersion:
        std::cout << "instructflip " << VersionString() << "\n";
        return 0;
      case Invocation::Action::kCommandHelp:
        for (size_t i = 0; i < invocation.commands.size(); ++i)
          std::cout << (i ? "\n" : "") << CommandHelp(*invocation.commands[i]);
        return 0;
      case Invocation::Action::kRun:
        g_set_overrides = invocation.overrides;
        return invocation.commands[0]->run(invocation.positionals);
    }
  } catch (const c10::Error& e) {  // LibTorch's what() carries a C++ backtrace
    return fail(e.what_without_backtrace());
  } catch (const instructflip::Error& e) {
    // Names the input; the source line that raised it only for developers.
    return fail(FLAGS_verbose && !e.where().empty() ? (std::string(e.what()) + " [" + e.where() + "]").c_str() : e.what());
  } catch (const std::exception& e) {
    // A filesystem, JSON or YAML library's error names its input in what():
    // one line either way, never a trace.
    return fail(e.what());
  }
  return 2;
}
