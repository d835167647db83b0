// Checkpoints of a training run, crash-safe and self-checking.
//
//   RUN/checkpoints/step-00000120/
//     model.safetensors        parameters and buffers (rank 0)
//     optimizer.pt             AdamW state (rank 0; replicas are identical)
//     trainer.json             step, loader state, loss scaler, world size, config (rank 0)
//     rank-00001.rng           each rank's RNG state (CPU generator; CUDA where present)
//     COMPLETE                 file names, sizes and CRC32C; written last
//   RUN/checkpoints/latest     name of the newest complete checkpoint
//
// Writing: every rank writes its files into step-N.tmp, fsyncs them; after a
// barrier rank 0 writes COMPLETE, fsyncs, renames the directory to step-N,
// fsyncs the parent, replaces `latest` atomically and prunes to the last K. A
// kill -9 at any point leaves either the previous checkpoint as newest or the
// new one complete. Resuming (`auto`) takes the newest directory whose COMPLETE
// matches its files; incomplete or damaged ones are skipped with a warning.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace instructflip {

struct CheckpointFile {
  std::string name;
  // Writes the file at `path` (the writer fsyncs it afterwards).
  std::function<void(const std::string& path)> write;
};

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string run_dir, int keep_last = 3);

  // The temp directory all ranks write into for `step` (created by Begin on rank 0).
  std::string TempDirectory(int64_t step) const;
  // Rank 0, before the ranks write: fresh temp directory (a leftover one is removed).
  void Begin(int64_t step) const;
  // Each rank: writes and fsyncs its files into the temp directory.
  void WriteFiles(int64_t step, const std::vector<CheckpointFile>& files) const;
  // Rank 0, after a barrier: COMPLETE, rename, `latest`, prune. Returns the final directory.
  std::string Commit(int64_t step) const;

  // Newest complete checkpoint directory, skipping damaged ones (warning each); nullopt if none.
  std::optional<std::string> FindLatestComplete() const;
  // The step-N directories (finished writes, damaged or not), newest first.
  std::vector<std::string> Checkpoints() const;
  // Checks COMPLETE against the files; throws instructflip::Error naming the problem.
  static void Verify(const std::string& directory);
  static int64_t StepOf(const std::string& directory);
  // The model weights to load from `path`: a checkpoint directory or the
  // model.safetensors inside one is Verify'd first (COMPLETE, sizes, CRC32C),
  // as resume does; a .safetensors file outside a checkpoint (exported weights)
  // is returned as it is, its own parser checking it.
  static std::string VerifiedModelWeights(const std::string& path);

  std::string directory() const { return root_; }

  // Called at points inside a checkpoint write ("after_first_file",
  // "before_complete", "before_latest") with the step, so a crash test can
  // kill the process exactly there. Empty: nothing.
  std::function<void(int64_t step, const std::string& point)> fault_point;
  static constexpr const char* kFaultPoints[] = {"after_first_file", "before_complete", "before_latest"};

 private:
  std::string root_;  // RUN/checkpoints
  int keep_last_;
};

}  // namespace instructflip
