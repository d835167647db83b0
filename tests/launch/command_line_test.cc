#include "launch/command_line.h"

#include <gflags/gflags.h>
#include <gtest/gtest.h>

#include <glog/logging.h>

#include "dataio/base/check.h"

// Flags of this test binary only (the real ones live in launch/flags.cc).
DEFINE_string(cl_out, "", "");
DEFINE_int32(cl_count, 4, "");
DEFINE_uint64(cl_seed, 0, "");
DEFINE_double(cl_rate, 0.5, "");
DEFINE_bool(cl_append, false, "");
DEFINE_string(cl_other, "", "");

namespace instructflip::launch {
namespace {

std::vector<Command> TestCommands() {
  auto run = [](const std::vector<std::string>&) { return 0; };
  return {{"make", "", "make something",
           {Required("cl_out", "DIR", "where"), Optional("cl_count", "N", "how many"),
            Optional("cl_seed", "S", "seed", "7"), Optional("cl_rate", "R", "rate"), Switch("cl_append", "append")},
           false, "", run},
          {"tool one", "FILE", "mode one", {Optional("cl_other", "X", "other")}, true, "", run},
          {"tool two", "", "mode two", {}, false, "", run}};
}

std::string ErrorOf(const std::vector<std::string>& args) {
  const std::vector<Command> commands = TestCommands();
  try {
    ParseCommandLine(commands, args);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CommandLine, TableDefaultsThenGivenValuesBothSpellings) {
  gflags::FlagSaver saver;
  const std::vector<Command> commands = TestCommands();
  const Invocation inv =
      ParseCommandLine(commands, {"make", "--cl-out", "d", "pos", "--cl_count=9", "--cl-append", "--cl-rate", "-1.5"});
  ASSERT_EQ(inv.action, Invocation::Action::kRun);
  EXPECT_EQ(inv.commands[0]->name, "make");
  EXPECT_EQ(inv.positionals, std::vector<std::string>{"pos"});
  EXPECT_EQ(FLAGS_cl_out, "d");
  EXPECT_EQ(FLAGS_cl_count, 9);
  EXPECT_EQ(FLAGS_cl_seed, 7u);  // the subcommand's default, not flags' 0
  EXPECT_EQ(FLAGS_cl_rate, -1.5);  // a negative value after the flag is its value
  EXPECT_TRUE(FLAGS_cl_append);
  ParseCommandLine(commands, {"make", "--cl-out=d", "--cl-seed", "18446744073709551615", "--nocl-append"});
  EXPECT_EQ(FLAGS_cl_seed, 18446744073709551615ull);  // 64-bit seeds
  EXPECT_FALSE(FLAGS_cl_append);
}

TEST(CommandLine, EveryMistakeIsAnErrorNamingFlagAndValue) {
  gflags::FlagSaver saver;
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--cl-cuont", "3"}).find("did you mean --cl-count?"), std::string::npos);
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--cl-other", "3"}).find("flag --cl-other is not accepted by 'make'"),
            std::string::npos);  // another subcommand's flag
  EXPECT_NE(ErrorOf({"make", "--cl-count", "3"}).find("'make' needs --cl-out DIR"), std::string::npos);
  EXPECT_NE(ErrorOf({"make", "--cl-out="}).find("needs --cl-out"), std::string::npos);  // empty is not given
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--cl-count", "many"}).find("--cl-count must be a whole number, got 'many'"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--cl-seed", "-3"}).find("non-negative"), std::string::npos);
  EXPECT_NE(ErrorOf({"make", "--cl-out"}).find("--cl-out needs a value (DIR)"), std::string::npos);
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--set", "a=1"}).find("'make' takes no --set"), std::string::npos);
  EXPECT_NE(ErrorOf({"make", "-cl-out", "d"}).find("flags are written --name"), std::string::npos);
  EXPECT_NE(ErrorOf({"mkae"}).find("did you mean 'make'?"), std::string::npos);
  EXPECT_NE(ErrorOf({"tool"}).find("'tool' needs a mode: one, two"), std::string::npos);
  // A forgotten value is not the next flag ("--cl-out --cl-append" is no directory).
  EXPECT_NE(ErrorOf({"make", "--cl-out", "--cl-append"}).find("--cl-out needs a value (DIR)"), std::string::npos);
  // gflags' own flags would set flags past the table.
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--flagfile=/dev/null"}).find("--flagfile is not accepted"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"make", "--cl-out", "d", "--version"}).find("--version is not accepted"), std::string::npos);
  EXPECT_NE(ErrorOf({"--verison"}).find("did you mean '--version'?"), std::string::npos);
}

TEST(CommandLine, ModesOverridesHelpAndForeignFlags) {
  gflags::FlagSaver saver;
  const std::vector<Command> commands = TestCommands();
  Invocation inv = ParseCommandLine(commands, {"tool", "one", "f.yaml", "--set", "a.b=1", "--set=c=2", "--v", "2"});
  EXPECT_EQ(FLAGS_v, 2);  // glog's flags pass, with their value as the next argument too
  EXPECT_EQ(inv.commands[0]->name, "tool one");
  EXPECT_EQ(inv.positionals, std::vector<std::string>{"f.yaml"});
  EXPECT_EQ(inv.overrides, (std::vector<std::string>{"a.b=1", "c=2"}));
  EXPECT_EQ(ParseCommandLine(commands, {"tool", "-h"}).commands.size(), 2u);  // help of every mode
  EXPECT_EQ(ParseCommandLine(commands, {"make", "--help"}).action, Invocation::Action::kCommandHelp);
  const Invocation help_make = ParseCommandLine(commands, {"help", "make"});
  EXPECT_EQ(help_make.action, Invocation::Action::kCommandHelp);
  EXPECT_EQ(help_make.commands[0]->name, "make");
  EXPECT_EQ(ParseCommandLine(commands, {}).action, Invocation::Action::kList);
  EXPECT_EQ(ParseCommandLine(commands, {"--version"}).action, Invocation::Action::kVersion);

  const std::string help = CommandHelp(commands[0]);
  EXPECT_NE(help.find("usage: instructflip make --cl-out DIR [flags]"), std::string::npos) << help;
  EXPECT_NE(help.find("--cl-count N"), std::string::npos);
  EXPECT_NE(help.find("(default: 4)"), std::string::npos);
  EXPECT_NE(help.find("(default: 7)"), std::string::npos);  // the table's default
  EXPECT_NE(help.find("where (required)"), std::string::npos);
  EXPECT_EQ(help.find("--set"), std::string::npos);  // make takes none
  FlagUse absent = Optional("cl_count", "N", "how many").Absent("all of them");
  EXPECT_NE(CommandHelp({"x", "", "", {absent}, false, "", nullptr}).find("how many (default: all of them)"),
            std::string::npos);
  EXPECT_NE(CommandHelp(commands[1]).find("--set KEY=VALUE"), std::string::npos);
  EXPECT_EQ(UsageLine(commands[1]), "instructflip tool one FILE [flags]");
  EXPECT_EQ(UsageLine(commands[2]), "instructflip tool two");
}

}  // namespace
}  // namespace instructflip::launch
