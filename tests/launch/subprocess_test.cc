// Child processes of the driver: exit codes and logs of a job, captured
// output, quoting that survives the shell, and the tail of a log.
#include "launch/subprocess.h"

#include <gtest/gtest.h>

#include "dataio/base/file_util.h"
#include "tests/common/test_util.h"

namespace instructflip::launch {
namespace {

using instructflip::testing::ErrorOf;
using instructflip::testing::TempDir;

TEST(Subprocess, RunLoggedAppendsOutputAndReturnsTheExitCode) {
  TempDir dir;
  const std::string log = dir / "log.txt";
  EXPECT_EQ(RunLogged({"sh", "-c", "echo first; echo error >&2; exit 3"}, log), 3);
  EXPECT_EQ(RunLogged({"sh", "-c", "echo second"}, log), 0);
  EXPECT_EQ(ReadFile(log), "first\nerror\nsecond\n");
  EXPECT_EQ(RunLogged({"sh", "-c", "kill -9 $$"}, log), 128 + 9);
  EXPECT_EQ(RunLogged({dir / "no-such-program"}, log), 127);
  EXPECT_EQ(FailureLines(log, 0, 2), "  second\n  " + dir / "no-such-program: No such file or directory\n");
  // A failure's own error line, not the last lines another process (an
  // orphaned earlier attempt) went on appending after it.
  const int64_t from = FileSize(log);
  EXPECT_EQ(RunLogged({"sh", "-c", "echo 'x: error: run directory in use'; echo step 7; echo step 8; exit 2"}, log), 2);
  EXPECT_EQ(FailureLines(log, from, 2), "  x: error: run directory in use\n");
  EXPECT_EQ(FailureLines(log, FileSize(log), 2), "");
}

TEST(Subprocess, QuotedTextSurvivesTheShellAndFailuresAreNamed) {
  for (const std::string text : {"plain", "a b", "it's", "$HOME `x` \"y\" \\z", ""})
    EXPECT_EQ(Capture("printf %s " + Quote(text)), text) << text;
  const std::string error = ErrorOf([] { Capture("echo broken; exit 4"); });
  EXPECT_NE(error.find("command failed"), std::string::npos) << error;
  EXPECT_NE(error.find("broken"), std::string::npos) << error;
  EXPECT_EQ(FindOnPath("sh").empty(), false);
  EXPECT_EQ(FindOnPath("no-such-program-anywhere"), "");
}

}  // namespace
}  // namespace instructflip::launch
