#include "trainer/run_files.h"

#include <cstdio>
#include <exception>
#include <filesystem>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip {

std::string VersionLog(const std::string& dir) { return JoinPath(dir, "versions.txt"); }

std::string TrainRunFiles::Config() const { return JoinPath(dir, "config.yaml"); }
std::string TrainRunFiles::Metrics() const { return JoinPath(dir, "metrics.jsonl"); }
std::string TrainRunFiles::Evaluation() const { return JoinPath(dir, "eval"); }
std::string TrainRunFiles::Report() const { return JoinPath(dir, "report.html"); }
std::string TrainRunFiles::Lock() const { return JoinPath(dir, ".run.lock"); }

std::string EvalFiles::Scores() const { return JoinPath(dir, "scores.csv"); }
std::string EvalFiles::Metrics() const { return JoinPath(dir, "metrics.json"); }
std::string EvalFiles::Table() const { return JoinPath(dir, "metrics.md"); }
std::string EvalFiles::Roc(const std::string& domain) const { return JoinUnder(dir, "roc_" + domain + ".csv"); }
std::string EvalFiles::Explanations() const { return JoinPath(dir, "explanations.jsonl"); }
std::string EvalFiles::ExplanationImage(const std::string& domain, const std::string& stem, const std::string& kind) {
  return "explanations/" + domain + "/" + stem + "_" + kind + ".png";
}
bool EvalFiles::IsOutput(const std::string& name) {
  const EvalFiles none{""};
  for (const std::string& file : {none.Scores(), none.Metrics(), none.Table(), none.Explanations()})
    if (name == file) return true;
  const bool roc = name.rfind("roc_", 0) == 0 && name.size() >= 8 && name.compare(name.size() - 4, 4, ".csv") == 0;
  return roc || name == "explanations";
}

std::string LodoRunFiles::Protocol() const { return JoinPath(run_dir, "protocol.yaml"); }
std::string LodoRunFiles::Table() const { return JoinPath(run_dir, "lodo.md"); }
std::string LodoRunFiles::Json() const { return JoinPath(run_dir, "lodo.json"); }
std::string LodoRunFiles::Report() const { return JoinPath(run_dir, "report.html"); }
std::string LodoRunFiles::Cache() const { return JoinPath(run_dir, "cache"); }
std::string LodoRunFiles::Jobs() const { return JoinPath(run_dir, "jobs"); }
std::string LodoRunFiles::Job(const std::string& job) const { return JoinPath(Jobs(), job); }
std::string LodoRunFiles::Result(const std::string& job) const { return JoinPath(Job(job), "result.json"); }
std::string LodoRunFiles::Cost(const std::string& job) const { return JoinPath(Job(job), "cost.json"); }
std::string LodoRunFiles::Log(const std::string& job) const { return JoinPath(Job(job), "log.txt"); }
std::string LodoRunFiles::Evaluation(const std::string& job) const { return JoinPath(Job(job), "eval"); }
std::string LodoRunFiles::Validation(const std::string& job) const { return JoinPath(Job(job), "validation"); }

std::string LodoRunFiles::EvaluationStep(const std::string& job, int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  return JoinPath(JoinPath(Job(job), "steps"), name);
}

bool LodoRunFiles::Finished(const std::string& job) const { return PathExists(Result(job)); }

void RequireDirectoryOrAbsent(const std::string& dir, const std::string& what) {
  IF_REQUIRE(!PathExists(dir) || std::filesystem::is_directory(dir), what, " '", dir, "' is a file, not a directory");
}

void RequireWritableFilePath(const std::string& path, const std::string& what) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  IF_REQUIRE(parent.empty() || std::filesystem::is_directory(parent), what, " '", path, "': directory '",
             parent.string(), "' does not exist");
  IF_REQUIRE(!std::filesystem::is_directory(path), what, " '", path, "' is a directory, not a file");
}

RunDirectoryClaim::RunDirectoryClaim(const std::string& dir, const std::string& what)
    : exceptions_at_claim_(std::uncaught_exceptions()) {
  RequireDirectoryOrAbsent(dir, what);
  created_ = CreateDirectories(dir);
  lock_path_ = TrainRunFiles{dir}.Lock();
  lock_was_there_ = PathExists(lock_path_);
  lock_ = std::make_unique<FileLock>(lock_path_, "run directory '" + dir + "'");
}

RunDirectoryClaim::~RunDirectoryClaim() {
  std::error_code ignored;
  if (std::uncaught_exceptions() > exceptions_at_claim_) {
    // A refused launch: the directory as it was before. The lock file this
    // claim made goes while still held (no other launch can be holding it),
    // then the directories it made, each only if empty (nothing was written).
    if (!lock_was_there_) std::filesystem::remove(lock_path_, ignored);
    RemoveEmptyDirectories(created_);
  }
  lock_.reset();
}

std::unique_ptr<RunDirectoryClaim> ClaimRunDirectory(const std::string& dir, const std::string& what) {
  return std::make_unique<RunDirectoryClaim>(dir, what);
}

}  // namespace instructflip
