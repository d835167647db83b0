// The file rendezvous (the NCCL unique id's bootstrap fallback): ranks as
// threads over one directory.
#include "dist/file_rendezvous.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "dataio/base/file_util.h"
#include "tests/common/test_util.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;

TEST(FileRendezvous, EveryRankGetsRankZerosBlobEvenWhenItComesLate) {
  TempDir dir;
  std::string blob(128, '\0');  // binary, like an ncclUniqueId
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 37 + 11);
  blob[5] = '\n';
  std::vector<std::string> received(3);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 3; ++r)
    ranks.emplace_back([&, r] { received[r] = AwaitRendezvous(dir.path, "job42-restart1", std::chrono::seconds(10)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // the others are already waiting
  PublishRendezvous(dir.path, "job42-restart1", blob);
  for (auto& t : ranks) t.join();
  for (const std::string& r : received) EXPECT_EQ(r, blob);
}

TEST(FileRendezvous, AnEarlierLaunchsFileIsNeverRead) {
  TempDir dir;
  PublishRendezvous(dir.path, "job42-restart0", "stale id");
  const std::string error = ErrorOf([&] { AwaitRendezvous(dir.path, "job42-restart1", std::chrono::milliseconds(100)); });
  EXPECT_NE(error.find("rendezvous-job42-restart1 did not appear"), std::string::npos) << error;
  EXPECT_NE(error.find("job42-restart1"), std::string::npos) << error;
}

TEST(FileRendezvous, DamagedFilesAreErrorsNamingThem) {
  TempDir dir;
  const std::string path = PublishRendezvous(dir.path, "k", "0123456789");
  std::string text = ReadFile(path);
  text.back() = 'X';  // one byte of the blob
  WriteFileAtomic(path, text);
  std::string error = ErrorOf([&] { AwaitRendezvous(dir.path, "k", std::chrono::seconds(1)); });
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("does not match its header"), std::string::npos) << error;
  WriteFileAtomic(path, "something else\n");
  error = ErrorOf([&] { AwaitRendezvous(dir.path, "k", std::chrono::seconds(1)); });
  EXPECT_NE(error.find("not a rendezvous file"), std::string::npos) << error;
  EXPECT_NE(ErrorOf([&] { PublishRendezvous(dir.path, "a/b", "x"); }).find("must be"), std::string::npos);
}

}  // namespace
}  // namespace instructflip
