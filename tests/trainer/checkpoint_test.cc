// Checkpoint directories: atomic commit, `latest`, pruning, and resume that
// skips interrupted or damaged checkpoints.
#include "trainer/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dataio/base/file_util.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;

std::vector<CheckpointFile> Files(const std::string& payload) {
  return {{"model.bin", [payload](const std::string& path) { std::ofstream(path) << payload; }},
          {"rank-00000.rng", [](const std::string& path) { std::ofstream(path) << "rng"; }}};
}

void Save(const CheckpointStore& store, int64_t step, const std::string& payload) {
  store.Begin(step);
  store.WriteFiles(step, Files(payload));
  store.Commit(step);
}

TEST(Checkpoint, CommitPointsLatestAndKeepsTheLastK) {
  TempDir tmp;
  CheckpointStore store(tmp.path, /*keep_last=*/2);
  for (int64_t step : {10, 20, 30}) Save(store, step, "weights at " + std::to_string(step));
  EXPECT_EQ(ReadFile(tmp / "checkpoints/latest"), "step-00000030\n");
  EXPECT_FALSE(PathExists(tmp / "checkpoints/step-00000010"));
  EXPECT_TRUE(PathExists(tmp / "checkpoints/step-00000020"));
  const auto latest = store.FindLatestComplete();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(CheckpointStore::StepOf(*latest), 30);
  EXPECT_EQ(ReadFile(*latest + "/model.bin"), "weights at 30");
}

TEST(Checkpoint, InterruptedAndDamagedCheckpointsAreSkipped) {
  TempDir tmp;
  CheckpointStore store(tmp.path, 5);
  Save(store, 10, "ten");
  Save(store, 20, "twenty");
  // A write killed before COMPLETE: only the temp directory exists.
  store.Begin(30);
  store.WriteFiles(30, Files("thirty"));
  EXPECT_EQ(CheckpointStore::StepOf(*store.FindLatestComplete()), 20);
  // A complete checkpoint damaged afterwards (one byte changed, same size).
  std::ofstream(tmp / "checkpoints/step-00000020/model.bin") << "twentY";
  const std::string error = ErrorOf([&] { CheckpointStore::Verify(tmp / "checkpoints/step-00000020"); });
  EXPECT_NE(error.find("model.bin"), std::string::npos) << error;
  EXPECT_NE(error.find("checksum"), std::string::npos) << error;
  EXPECT_EQ(CheckpointStore::StepOf(*store.FindLatestComplete()), 10);
  // A directory without COMPLETE (e.g. copied by hand) is not trusted either.
  std::filesystem::create_directories(tmp / "checkpoints/step-00000040");
  EXPECT_EQ(CheckpointStore::StepOf(*store.FindLatestComplete()), 10);
  // What is not a checkpoint says what it is instead.
  auto verify_error = [&](const std::string& dir) { return ErrorOf([&] { CheckpointStore::Verify(tmp / dir); }); };
  EXPECT_NE(verify_error("checkpoints/step-00000040").find("not a checkpoint (no COMPLETE marker and no model.safetensors)"),
            std::string::npos);
  EXPECT_NE(verify_error("nowhere").find("nowhere: no such checkpoint directory"), std::string::npos);
  std::ofstream(tmp / "a-file") << "x";
  EXPECT_NE(verify_error("a-file").find("a-file: a file, not a checkpoint directory"), std::string::npos);
  EXPECT_NE(verify_error("").find("a run directory, not a checkpoint"), std::string::npos);
  std::filesystem::create_directories(tmp / "bundle");
  std::ofstream(tmp / "bundle/bundle.json") << "{}";
  EXPECT_NE(verify_error("bundle").find("an exported bundle, not a checkpoint"), std::string::npos);
  std::ofstream(tmp / "checkpoints/step-00000040/model.safetensors") << "x";
  EXPECT_NE(verify_error("checkpoints/step-00000040").find("no COMPLETE marker (interrupted write)"), std::string::npos);
  std::filesystem::remove_all(tmp / "checkpoints/step-00000040");
  // Re-writing step 30 after the crash replaces the leftover temp directory.
  Save(store, 30, "thirty again");
  EXPECT_EQ(ReadFile(*store.FindLatestComplete() + "/model.bin"), "thirty again");
}

TEST(Checkpoint, NoCheckpointsMeansFreshStart) {
  TempDir tmp;
  EXPECT_FALSE(CheckpointStore(tmp.path).FindLatestComplete().has_value());
  EXPECT_THROW(CheckpointStore(tmp.path, 0), std::runtime_error);
}

}  // namespace
}  // namespace instructflip
