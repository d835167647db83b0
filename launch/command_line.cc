#include "launch/command_line.h"

#include <algorithm>
#include <set>
#include <sstream>

#include <gflags/gflags.h>

#include "dataio/base/check.h"

namespace instructflip::launch {
namespace {

std::string Dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return "--" + name;
}

// Levenshtein distance, for suggesting what was meant (no Debian package offers
// it for C++ beyond this dozen lines).
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

// The candidate a few edits from `name`, or "".
std::string Nearest(const std::string& name, const std::vector<std::string>& candidates) {
  std::string nearest;
  size_t best = 4;
  for (const std::string& c : candidates)
    if (const size_t d = EditDistance(name, c); d < best) best = d, nearest = c;
  return nearest;
}

const FlagUse* FindFlag(const Command& command, const std::string& name) {
  for (const FlagUse& f : command.flags)
    if (f.name == name) return &f;
  return nullptr;
}

std::string TypeWord(const std::string& gflags_type) {
  if (gflags_type == "int32" || gflags_type == "int64") return "a whole number";
  if (gflags_type == "uint32" || gflags_type == "uint64") return "a non-negative whole number";
  if (gflags_type == "double") return "a number";
  if (gflags_type == "bool") return "true or false";
  return "a string";
}

// Sets a gflags value; a value of the wrong type is an Error naming both.
void SetFlag(const std::string& name, const std::string& value, const std::string& command) {
  if (!gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) return;
  gflags::CommandLineFlagInfo info;
  gflags::GetCommandLineFlagInfo(name.c_str(), &info);
  IF_FAIL(Dashed(name), " must be ", TypeWord(info.type), ", got '", value, "' (see `instructflip ", command,
          " --help`)");
}

// glog's flags and --verbose, which every subcommand accepts (they only steer
// logging and error messages).
bool IsLoggingFlag(const std::string& name) {
  static const std::set<std::string> kLogging = {"v",           "vmodule",         "logtostderr",
                                                 "alsologtostderr", "colorlogtostderr", "stderrthreshold",
                                                 "minloglevel", "log_dir", "verbose"};
  return kLogging.count(name) > 0;
}

// The commands whose name is `first` or starts with "`first` " (its modes).
std::vector<const Command*> Matching(const std::vector<Command>& commands, const std::string& first) {
  std::vector<const Command*> found;
  for (const Command& c : commands)
    if (c.name == first || c.name.rfind(first + " ", 0) == 0) found.push_back(&c);
  return found;
}

}  // namespace

Invocation ParseCommandLine(const std::vector<Command>& commands, const std::vector<std::string>& given_args) {
  Invocation invocation;
  std::vector<std::string> args = given_args;
  if (args.size() > 1 && args[0] == "help") {  // `help synth` = `synth --help`
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    invocation.action = Invocation::Action::kList;
    return invocation;
  }
  if (args[0] == "--version") {
    invocation.action = Invocation::Action::kVersion;
    return invocation;
  }
  const bool wants_help = std::find_if(args.begin(), args.end(), [](const std::string& a) {
                            return a == "--help" || a == "-h";
                          }) != args.end();

  // 1. The subcommand: one word, or two for a mode ("bench step").
  const std::vector<const Command*> candidates = Matching(commands, args[0]);
  const Command* command = nullptr;
  size_t next = 1;
  for (const Command* c : candidates) {
    if (c->name == args[0]) command = c;
    if (args.size() > 1 && c->name == args[0] + " " + args[1]) command = c, next = 2;
  }
  if (!command) {
    if (!candidates.empty() && wants_help) {
      invocation.action = Invocation::Action::kCommandHelp;
      invocation.commands = candidates;
      return invocation;
    }
    std::vector<std::string> names = {"help", "--help", "--version"};
    for (const Command& c : commands) names.push_back(c.name.substr(0, c.name.find(' ')));
    if (!candidates.empty()) {
      std::string modes;
      for (const Command* c : candidates) modes += (modes.empty() ? "" : ", ") + c->name.substr(args[0].size() + 1);
      IF_FAIL("'", args[0], "' needs a mode: ", modes, " (see `instructflip ", args[0], " --help`)");
    }
    const std::string nearest = Nearest(args[0], names);
    IF_FAIL("unknown subcommand '", args[0], "'", nearest.empty() ? "" : "; did you mean '" + nearest + "'?",
            " (see `instructflip help`)");
  }
  invocation.commands = {command};
  if (wants_help) {
    invocation.action = Invocation::Action::kCommandHelp;
    return invocation;
  }

  // 2. This subcommand's defaults, then the flags as given.
  for (const FlagUse& f : command->flags)
    if (f.default_value) gflags::SetCommandLineOptionWithMode(f.name.c_str(), f.default_value->c_str(),
                                                              gflags::SET_FLAGS_DEFAULT);
  std::set<std::string> ours;  // flags some subcommand lists (the rest belong to glog/gflags)
  for (const Command& c : commands)
    for (const FlagUse& f : c.flags) ours.insert(f.name);
  std::vector<std::string> accepted;
  for (const FlagUse& f : command->flags) accepted.push_back(f.name);

  std::set<std::string> given;
  bool only_positionals = false;
  for (size_t i = next; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positionals || arg.size() < 2 || arg[0] != '-') {
      invocation.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positionals = true;
      continue;
    }
    IF_REQUIRE(arg.rfind("--", 0) == 0, "'", arg, "': flags are written --name or --name=value (see `instructflip ",
               command->name, " --help`)");
    const size_t equals = arg.find('=');
    std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    std::replace(name.begin(), name.end(), '-', '_');
    std::optional<std::string> value;
    if (equals != std::string::npos) value = arg.substr(equals + 1);

    if (name == "set") {
      IF_REQUIRE(command->takes_overrides, "'", command->name, "' takes no --set (see `instructflip ", command->name,
                 " --help`)");
      if (!value) {
        IF_REQUIRE(i + 1 < args.size(), "--set needs KEY=VALUE");
        value = args[++i];
      }
      invocation.overrides.push_back(*value);
      continue;
    }
    const FlagUse* use = FindFlag(*command, name);
    if (!use && name.rfind("no", 0) == 0 && !value) {  // --noFLAG for a switch FLAG
      const FlagUse* negated = FindFlag(*command, name.substr(2));
      if (negated && negated->value.empty()) use = negated, name = name.substr(2), value = "false";
    }
    gflags::CommandLineFlagInfo info;
    if (!use && !ours.count(name) && IsLoggingFlag(name) && gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      if (!value) {
        if (info.type == "bool") {
          value = "true";
        } else {
          IF_REQUIRE(i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0, Dashed(name), " needs a value");
          value = args[++i];
        }
      }
      SetFlag(name, *value, command->name);
      continue;
    }
    if (!use) {
      const std::string nearest = Nearest(name, accepted);
      IF_FAIL("flag ", Dashed(name), " is not accepted by '", command->name, "'",
              nearest.empty() ? std::string() : "; did you mean " + Dashed(nearest) + "?", " (see `instructflip ",
              command->name, " --help`)");
    }
    if (!value) {
      if (use->value.empty()) {
        value = "true";
      } else {
        // "--out --json" is a forgotten value, not a directory named "--json".
        IF_REQUIRE(i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0, Dashed(name), " needs a value (",
                   use->value, ")");
        value = args[++i];
      }
    }
    SetFlag(name, *value, command->name);
    if (!value->empty()) given.insert(name);
  }

  // 3. What the subcommand cannot run without.
  for (const FlagUse& f : command->flags)
    IF_REQUIRE(!f.required || given.count(f.name), "'", command->name, "' needs ", Dashed(f.name), " ", f.value,
               " (see `instructflip ", command->name, " --help`)");
  return invocation;
}

std::string UsageLine(const Command& command) {
  std::string line = "instructflip " + command.name;
  if (!command.arguments.empty()) line += " " + command.arguments;
  bool optional = command.takes_overrides;
  for (const FlagUse& f : command.flags) {
    if (f.required) line += " " + Dashed(f.name) + " " + f.value;
    else optional = true;
  }
  return optional ? line + " [flags]" : line;
}

std::string CommandHelp(const Command& command) {
  std::ostringstream out;
  out << "usage: " << UsageLine(command) << "\n";
  if (!command.notes.empty()) out << command.notes << "\n";
  out << "\n" << command.summary << "\n\nflags:\n";
  auto row = [&](const std::string& left, const std::string& right) {
    out << "  " << left << std::string(std::max<int>(2, 26 - static_cast<int>(left.size())), ' ') << right << "\n";
  };
  for (const FlagUse& f : command.flags) {
    std::string shown = Dashed(f.name) + (f.value.empty() ? "" : " " + f.value);
    std::string text = f.help;
    if (f.required) {
      text += " (required)";
    } else if (!f.absent.empty()) {
      text += " (default: " + f.absent + ")";
    } else if (!f.value.empty()) {
      gflags::CommandLineFlagInfo info;
      std::string value = f.default_value.value_or(
          gflags::GetCommandLineFlagInfo(f.name.c_str(), &info) ? info.default_value : std::string());
      text += " (default: " + (value.empty() ? "none" : value) + ")";
    }
    row(shown, text);
  }
  if (command.takes_overrides) row("--set KEY=VALUE", "override a configuration key (data.store=DIR); repeatable");
  row("--verbose", "errors also name the source line that raised them");
  row("--help, -h", "this text");
  return out.str();
}

std::string CommandList(const std::vector<Command>& commands) {
  std::ostringstream out;
  out << "instructflip: InstructFLIP face anti-spoofing, trained and evaluated in C++\n\n"
         "usage: instructflip <subcommand> [arguments] [--flags]\n\nsubcommands:\n";
  for (const Command& c : commands)
    out << "  " << c.name << std::string(std::max<int>(2, 17 - static_cast<int>(c.name.size())), ' ') << c.summary
        << "\n      " << UsageLine(c) << "\n";
  out << "\n`instructflip SUBCOMMAND --help` shows a subcommand's flags, `instructflip --version` the version;\n"
         "README.md describes everything.\n";
  return out.str();
}

}  // namespace instructflip::launch
