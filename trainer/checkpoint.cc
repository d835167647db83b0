#include "trainer/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip {

namespace fs = std::filesystem;

namespace {

std::string StepName(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  return name;
}

}  // namespace

CheckpointStore::CheckpointStore(std::string run_dir, int keep_last)
    : root_(JoinPath(run_dir, "checkpoints")), keep_last_(keep_last) {
  IF_REQUIRE(keep_last >= 1, "checkpoint.keep_last must be >= 1, got ", keep_last);
}

std::string CheckpointStore::TempDirectory(int64_t step) const { return JoinPath(root_, StepName(step) + ".tmp"); }

void CheckpointStore::Begin(int64_t step) const {
  const std::string temp = TempDirectory(step);
  fs::remove_all(temp);  // left by an interrupted write of the same step
  fs::create_directories(temp);
}

void CheckpointStore::WriteFiles(int64_t step, const std::vector<CheckpointFile>& files) const {
  const std::string temp = TempDirectory(step);
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string path = JoinPath(temp, files[i].name);
    files[i].write(path);
    FsyncFile(path);
    if (i == 0 && fault_point) fault_point(step, kFaultPoints[0]);
  }
}

std::string CheckpointStore::Commit(int64_t step) const {
  const std::string temp = TempDirectory(step);
  nlohmann::json complete;
  complete["step"] = step;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(temp)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = JoinPath(temp, name);
    complete["files"][name] = {{"bytes", FileSize(path)}, {"crc32c", FileCrc32c(path)}};
  }
  if (fault_point) fault_point(step, kFaultPoints[1]);
  WriteFileAtomic(JoinPath(temp, "COMPLETE"), complete.dump(2));
  const std::string final_dir = JoinPath(root_, StepName(step));
  fs::remove_all(final_dir);  // a checkpoint of the same step (re-run after a resume)
  RenameDurable(temp, final_dir);
  if (fault_point) fault_point(step, kFaultPoints[2]);
  WriteFileAtomic(JoinPath(root_, "latest"), StepName(step) + "\n");
  // Keep the newest `keep_last` complete checkpoints.
  std::vector<std::string> done;
  for (const auto& entry : fs::directory_iterator(root_)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0 && name.find(".tmp") == std::string::npos)
      done.push_back(name);
  }
  std::sort(done.begin(), done.end());
  for (size_t i = 0; i + keep_last_ < done.size(); ++i) fs::remove_all(JoinPath(root_, done[i]));
  return final_dir;
}

void CheckpointStore::Verify(const std::string& directory) {
  const std::string complete_path = JoinPath(directory, "COMPLETE");
  if (!PathExists(complete_path)) {
    IF_REQUIRE(PathExists(directory), directory, ": no such checkpoint directory");
    IF_REQUIRE(fs::is_directory(directory), directory, ": a file, not a checkpoint directory (RUN/checkpoints/step-N)");
    IF_REQUIRE(!PathExists(JoinPath(directory, "bundle.json")), directory,
               ": an exported bundle, not a checkpoint (predict --model takes it)");
    IF_REQUIRE(!fs::is_directory(JoinPath(directory, "checkpoints")), directory,
               ": a run directory, not a checkpoint; name one of its checkpoints/step-N");
    IF_REQUIRE(PathExists(JoinPath(directory, "model.safetensors")), directory,
               ": not a checkpoint (no COMPLETE marker and no model.safetensors)");
    IF_FAIL(directory, ": no COMPLETE marker (interrupted write)");
  }
  nlohmann::json complete;
  try {
    complete = nlohmann::json::parse(ReadFile(complete_path));
  } catch (const nlohmann::json::exception& e) {
    IF_FAIL(complete_path, ": unreadable: ", e.what());
  }
  IF_REQUIRE(complete.contains("files") && complete["files"].is_object(), complete_path, ": no file list");
  for (const auto& [name, info] : complete["files"].items()) {
    int64_t bytes = 0;
    uint32_t crc = 0;
    try {
      bytes = info.at("bytes").get<int64_t>();
      crc = info.at("crc32c").get<uint32_t>();
    } catch (const nlohmann::json::exception& e) {
      IF_FAIL(complete_path, ": entry '", name, "' needs a byte count and a CRC32C: ", e.what());
    }
    const std::string path = JoinUnder(directory, name);
    IF_REQUIRE(PathExists(path), directory, ": file '", name, "' is missing");
    IF_REQUIRE(FileSize(path) == bytes, directory, ": file '", name, "' has ", FileSize(path),
               " bytes, COMPLETE says ", bytes);
    IF_REQUIRE(FileCrc32c(path) == crc, directory, ": file '", name, "' fails its checksum");
  }
}

int64_t CheckpointStore::StepOf(const std::string& directory) {
  const std::string name = fs::path(directory).filename().string();
  long long step = -1;
  IF_REQUIRE(std::sscanf(name.c_str(), "step-%lld", &step) == 1, "'", directory, "' is not a checkpoint directory");
  return step;
}

std::string CheckpointStore::VerifiedModelWeights(const std::string& path) {
  const bool directory = std::filesystem::is_directory(path);
  const std::string checkpoint = directory ? path : std::filesystem::path(path).parent_path().string();
  const bool in_checkpoint = directory || PathExists(JoinPath(checkpoint, "COMPLETE")) ||
                             std::filesystem::path(checkpoint).filename().string().rfind("step-", 0) == 0;
  if (!in_checkpoint) {
    IF_REQUIRE(PathExists(path), "model weights '", path, "' do not exist");
    return path;
  }
  Verify(checkpoint);
  return JoinPath(checkpoint, "model.safetensors");
}

std::vector<std::string> CheckpointStore::Checkpoints() const {
  std::vector<std::string> found;
  if (!PathExists(root_)) return found;
  for (const auto& entry : fs::directory_iterator(root_)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0 && name.find(".tmp") == std::string::npos)
      found.push_back(entry.path().string());
  }
  std::sort(found.rbegin(), found.rend());  // newest first (zero-padded names)
  return found;
}

std::optional<std::string> CheckpointStore::FindLatestComplete() const {
  for (const std::string& candidate : Checkpoints()) {
    try {
      Verify(candidate);
      return candidate;
    } catch (const std::exception& e) {  // Error, or a malformed COMPLETE's JSON
      LOG(WARNING) << "skipping checkpoint: " << e.what();
    }
  }
  return std::nullopt;
}

}  // namespace instructflip
