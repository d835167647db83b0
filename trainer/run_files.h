// Every file name of a run directory, in one place. A training run (`train`,
// or one LODO job) holds config.yaml, metrics.jsonl, checkpoints/ (see
// checkpoint.h) and TensorBoard events; an evaluation output holds the scores,
// metrics, ROC curves and explanations; a LODO run (lodo.h: LodoRunFiles)
// holds the plan, the jobs and the aggregated table. The report reads what
// these name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dataio/base/file_util.h"

namespace instructflip {

// DIR/versions.txt, in every directory a run writes (train, LODO run and job:
// one line per start; eval: one with its outputs), naming the instructflip
// build (launch/version.h), so a resumed run shows every binary it ran under.
std::string VersionLog(const std::string& dir);

struct TrainRunFiles {
  std::string dir;
  std::string Config() const;      // config.yaml: the resolved configuration
  std::string Metrics() const;     // metrics.jsonl: one record per logged step
  std::string Evaluation() const;  // eval/: `eval --out` or a LODO job's test
  std::string Report() const;      // report.html
  std::string Lock() const;        // .run.lock: flock'ed by the one process (rank 0) writing the run
};

struct EvalFiles {
  std::string dir;
  std::string Scores() const;                         // scores.csv
  std::string Metrics() const;                        // metrics.json
  std::string Table() const;                          // metrics.md
  std::string Roc(const std::string& domain) const;   // roc_<domain>.csv
  std::string Explanations() const;                   // explanations.jsonl
  // explanations/<domain>/<stem>_<kind>.png, relative to `dir` (as the JSONL records it).
  static std::string ExplanationImage(const std::string& domain, const std::string& stem, const std::string& kind);
  // Whether `name`, an entry of `dir`, is one of the files above (or the explanations/ folder).
  static bool IsOutput(const std::string& name);
};

struct LodoRunFiles {
  std::string run_dir;
  std::string Protocol() const;                       // protocol.yaml: the plan
  std::string Table() const;                          // lodo.md
  std::string Json() const;                           // lodo.json
  std::string Report() const;                         // report.html
  std::string Cache() const;                          // cache/: shared by the jobs (T5 warm-up)
  std::string Jobs() const;                           // jobs/
  std::string Job(const std::string& job) const;      // jobs/NAME/: a training run directory
  std::string Result(const std::string& job) const;   // jobs/NAME/result.json: written last
  std::string Cost(const std::string& job) const;     // jobs/NAME/cost.json
  std::string Log(const std::string& job) const;      // jobs/NAME/log.txt
  std::string Evaluation(const std::string& job) const;  // jobs/NAME/eval/
  std::string Validation(const std::string& job) const;  // jobs/NAME/validation/
  // jobs/NAME/steps/step-NNNNNNNN/: an evaluation during training (validation/,
  // eval/, summary.json); the selected one is copied to eval/ and validation/.
  std::string EvaluationStep(const std::string& job, int64_t step) const;
  bool Finished(const std::string& job) const;        // result.json exists
};

// An output directory the user named: absent (it will be created) or a
// directory; a regular file there is an Error naming `what` and the path.
void RequireDirectoryOrAbsent(const std::string& dir, const std::string& what);
// An output file the user named, checked before the work that fills it: its
// directory exists and the path is absent or a file (then replaced).
void RequireWritableFilePath(const std::string& path, const std::string& what);

// Rank 0's claim on a run directory before it writes there: the directory is
// created (a regular file of that name is an error naming `what`) and locked
// (TrainRunFiles::Lock) for the life of the claim, so a second training on it
// refuses, naming the holder's pid and host, instead of interleaving with this
// one. A launch that fails removes the lock file and the (still empty)
// directories the claim made: a refused launch leaves no trace.
class RunDirectoryClaim {
 public:
  RunDirectoryClaim(const std::string& dir, const std::string& what);
  ~RunDirectoryClaim();
  RunDirectoryClaim(const RunDirectoryClaim&) = delete;
  RunDirectoryClaim& operator=(const RunDirectoryClaim&) = delete;

 private:
  std::vector<std::string> created_;  // directories this claim created, deepest first
  std::string lock_path_;
  bool lock_was_there_ = false;
  int exceptions_at_claim_ = 0;  // std::uncaught_exceptions() then: more at destruction = failing
  std::unique_ptr<FileLock> lock_;
};
std::unique_ptr<RunDirectoryClaim> ClaimRunDirectory(const std::string& dir, const std::string& what);

}  // namespace instructflip
