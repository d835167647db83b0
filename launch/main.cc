// instructflip: entry point. `instructflip help` lists the subcommands,
// `instructflip <subcommand> --help` (or -h) one subcommand's flags with their
// defaults, `instructflip --version` the version and git revision. Errors from
// bad input surface here once, as one line on stderr, exit code 2; an unknown
// flag names the nearest one the subcommand accepts.
#include <algorithm>
#include <iostream>

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
  std::cout << "\n`instructflip help` shows this list, `instructflip SUBCOMMAND --help` a subcommand's flags,\n"
               "`instructflip --version` the version; README.md describes everything.\n";
}

// One subcommand's usage and the flags it accepts, with defaults.
void PrintCommandHelp(const Command& command) {
  std::cout << "usage: instructflip " << command.usage << "\n\n" << command.summary << "\n";
  if (!command.flags.empty()) std::cout << "\nflags (also written with '-' for '_'):\n";
  for (const std::string& name : command.flags) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) continue;
    std::string shown = "--" + name;
    std::replace(shown.begin(), shown.end(), '_', '-');
    std::cout << "  " << shown << std::string(std::max<int>(1, 20 - static_cast<int>(shown.size())), ' ')
              << info.description << " (default: " << (info.default_value.empty() ? "\"\"" : info.default_value)
              << ")\n";
  }
  std::cout << "  --set KEY=VALUE     (train, eval, lodo, demo) override a configuration key; repeatable\n"
            << "  --help, -h          this text\n";
}

// Levenshtein distance, for suggesting the flag that was meant.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// A `--name[=value]` the subcommand does not know: an error naming the nearest
// flag it accepts (before gflags, which would exit 1 on unknown flags).
void CheckFlagNames(const Command& command, const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg.rfind("--", 0) != 0 || arg == "--") continue;
    std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    gflags::CommandLineFlagInfo info;
    if (name.rfind("no", 0) == 0 && gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) &&
        info.type == "bool")
      name = name.substr(2);  // --noFLAG for a boolean FLAG
    const bool known = gflags::GetCommandLineFlagInfo(name.c_str(), &info);
    // glog's and gflags' own flags (--v, --flagfile) pass through.
    if (known && info.filename.find("launch/flags.cc") == std::string::npos) continue;
    if (known && std::find(command.flags.begin(), command.flags.end(), name) != command.flags.end()) continue;
    std::string nearest;
    size_t best = 4;  // suggest only what is a few edits away
    for (const std::string& f : command.flags)
      if (const size_t d = EditDistance(name, f); d < best) best = d, nearest = f;
    std::replace(name.begin(), name.end(), '_', '-');
    std::replace(nearest.begin(), nearest.end(), '_', '-');
    IF_FAIL("flag --", name, " is not accepted by '", command.name, "'",
            nearest.empty() ? std::string() : "; did you mean --" + nearest + "?",
            " (see `instructflip ", command.name, " --help`)");
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
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help" ||
      std::string(argv[1]) == "-h") {
    PrintHelp(commands);
    return 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "instructflip " << INSTRUCTFLIP_VERSION << " (git " << INSTRUCTFLIP_GIT_REVISION << ")\n";
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
    if (arg == "--help" || arg == "-h") {
      PrintCommandHelp(*it);
      return 0;
    }
    if (arg == "--set" && i + 1 < argc) {
      g_set_overrides.push_back(argv[++i]);
    } else if (arg.rfind("--set=", 0) == 0) {
      g_set_overrides.push_back(arg.substr(6));
    } else {
      storage.push_back(NormaliseFlagName(arg));
    }
  }
  try {
    CheckFlagNames(*it, storage);
  } catch (const instructflip::Error& e) {
    std::cerr << "instructflip " << name << ": error: " << e.what() << "\n";
    return 2;
  }
  std::vector<char*> rest{argv[0]};
  for (std::string& arg : storage) rest.push_back(arg.data());
  int rest_argc = static_cast<int>(rest.size());
  char** rest_argv = rest.data();
  gflags::ParseCommandLineFlags(&rest_argc, &rest_argv, /*remove_flags=*/true);
  std::vector<std::string> positionals(rest_argv + 1, rest_argv + rest_argc);
  try {
    return it->run(positionals);
  } catch (const instructflip::Error& e) {
    std::cerr << "instructflip " << name << ": error: " << e.what() << "\n";
    return 2;
  }
}
