// instructflip: entry point. `instructflip help` lists the subcommands.
// Errors from bad input surface here once, as one line on stderr, exit code 2.
#include <algorithm>
#include <iostream>
#include <set>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "dataio/base/check.h"
#include "launch/commands.h"
#include "launch/flags.h"

namespace {

using instructflip::launch::Command;

std::vector<Command> AllCommands() {
  std::vector<Command> all;
  for (auto group : {instructflip::launch::DataCommands(), instructflip::launch::TrainCommands(),
                     instructflip::launch::LodoCommands(), instructflip::launch::MetricsCommands(),
                     instructflip::launch::BenchCommands()})
    all.insert(all.end(), group.begin(), group.end());
  return all;
}

void PrintHelp(const std::vector<Command>& commands) {
  std::cout << "instructflip: InstructFLIP face anti-spoofing, trained and evaluated in C++\n\n"
               "usage: instructflip <subcommand> [args] [--flags]\n\nsubcommands:\n";
  for (const Command& c : commands)
    std::cout << "  " << c.name << std::string(std::max<int>(1, 8 - c.name.size()), ' ') << c.summary
              << "\n      instructflip " << c.usage << "\n";
  std::cout << "\n`instructflip help` shows this list; flags are described in README.md.\n";
}

// A flag the subcommand does not accept is an error, not silently ignored.
void CheckFlags(const Command& command) {
  const std::set<std::string> allowed(command.flags.begin(), command.flags.end());
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& flag : flags) {
    if (flag.is_default || flag.filename.find("launch/flags.cc") == std::string::npos) continue;
    IF_REQUIRE(allowed.count(flag.name), "flag --", flag.name, " is not accepted by '",
               command.name, "' (see `instructflip help`)");
  }
}

std::vector<std::string> g_set_overrides;

std::string NormaliseFlagName(std::string arg) {
  if (arg.rfind("--", 0) != 0) return arg;
  const size_t end = std::min(arg.find('='), arg.size());
  std::replace(arg.begin() + 2, arg.begin() + end, '-', '_');
  return arg;
}

}  // namespace

const std::vector<std::string>& instructflip::launch::SetOverrides() { return g_set_overrides; }

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  const std::vector<Command> commands = AllCommands();
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help") {
    PrintHelp(commands);
    return 0;
  }
  const std::string name = argv[1];
  auto it = std::find_if(commands.begin(), commands.end(), [&](const Command& c) { return c.name == name; });
  if (it == commands.end()) {
    std::cerr << "instructflip: unknown subcommand '" << name << "' (see `instructflip help`)\n";
    return 2;
  }
  // Drop the subcommand so gflags sees `instructflip [args] --flags`, and accept
  // `--per-domain` as well as gflags' `--per_domain`.
  // --set is repeatable, which gflags cannot express: collect it here.
  std::vector<std::string> storage;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--set" && i + 1 < argc) {
      g_set_overrides.push_back(argv[++i]);
    } else if (arg.rfind("--set=", 0) == 0) {
      g_set_overrides.push_back(arg.substr(6));
    } else {
      storage.push_back(NormaliseFlagName(arg));
    }
  }
  std::vector<char*> rest{argv[0]};
  for (std::string& arg : storage) rest.push_back(arg.data());
  int rest_argc = static_cast<int>(rest.size());
  char** rest_argv = rest.data();
  gflags::ParseCommandLineFlags(&rest_argc, &rest_argv, /*remove_flags=*/true);
  std::vector<std::string> positionals(rest_argv + 1, rest_argv + rest_argc);
  try {
    CheckFlags(*it);
    return it->run(positionals);
  } catch (const instructflip::Error& e) {
    std::cerr << "instructflip " << name << ": error: " << e.what() << "\n";
    return 2;
  }
}
