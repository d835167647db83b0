// StoreWriter: builds or extends a meta-domain store directory
// (manifest.json + shard-NNNNN.h5; format in dataio/README.md).
//
// Crash safety: samples are buffered and each full shard is written to a hidden
// temporary file, fsynced and renamed to its final name; the manifest, written
// the same way by Commit(), is the single commit point. Until Commit() returns,
// a reader sees the store exactly as it was (new shard files are not referenced
// by the old manifest, and a writer that is destroyed without Commit() deletes
// them). --append keeps every existing shard untouched.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "dataio/base/file_util.h"
#include "dataio/manifest.h"
#include "dataio/schema.h"

namespace instructflip {

struct StoreWriterOptions {
  std::string dir;
  int image_size = 224;
  int jpeg_quality = 90;                      // recorded in the manifest
  bool append = false;                        // add domains to an existing store
  int64_t shard_max_bytes = 256ll << 20;      // a shard is closed once its image bytes reach this
};

class StoreWriter {
 public:
  // Creates `dir` (must be empty or absent) or, with append, opens the existing
  // store's manifest. Throws instructflip::Error on bad input.
  explicit StoreWriter(StoreWriterOptions options);
  ~StoreWriter();  // without Commit(): removes the shards this writer wrote
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Returns the index of domain `name`. A name the store already holds is an
  // error unless `extend` (ingest --append: the MCIO preparation ingests a
  // dataset's train list, then its test list, into one domain); the domain
  // then takes more samples. Naming a domain twice in one writer is an error.
  int AddDomain(const std::string& name, bool extend = false);

  // What an extended domain held before this writer (Held(domain) is null for a new one).
  struct HeldDomain {
    std::set<std::pair<int8_t, std::string>> inputs;  // (split, input); a video's frames count as its file
    std::map<std::string, int64_t> video_of_input;    // input -> its video id
    std::map<int64_t, int8_t> label_of_video;         // video id -> label
    int64_t next_video_id = 0;                        // one above the largest video id
  };
  const HeldDomain* Held(int domain) const;
  // Whether the store held a sample of `domain` from input `source` in `split`
  // before this writer ("v.avi#frame=6" is input "v.avi"): an exact duplicate.
  bool HeldBefore(int domain, Split split, const std::string& source) const;

  // Appends one sample: image bytes (JPEG or PNG, image_codec.h) at the store's image size. An exact
  // duplicate of a sample held before (HeldBefore) is an error. Not thread-safe:
  // producers decode/encode in parallel and add in a deterministic order.
  void Add(int domain, const std::string& jpeg, const SampleAttributes& attributes);

  // Records an input that could not be used (listed in the manifest).
  void RecordSkip(const std::string& source, const std::string& reason);

  // Writes the last shard and the manifest atomically. Returns the manifest.
  const Manifest& Commit();

  int64_t num_added() const { return num_added_; }
  int64_t num_skipped() const { return static_cast<int64_t>(manifest_.skipped.size()); }

 private:
  struct PendingShard;
  void FlushShard();

  StoreWriterOptions options_;
  Manifest manifest_;
  std::unique_ptr<PendingShard> pending_;
  std::map<int, HeldDomain> held_;           // existing domains this writer extends
  std::vector<std::string> added_domains_;   // names given to AddDomain, each once
  std::vector<std::string> written_shards_;  // final paths written by this writer
  void TakeBack();  // an uncommitted or refused writer's files and directories go
  std::vector<std::string> created_dirs_;  // made by this writer, deepest first
  std::string lock_path_;                  // DIR/.writer.lock, held while writing
  bool lock_was_there_ = false;
  std::unique_ptr<FileLock> lock_;
  int next_shard_index_ = 0;
  int64_t num_added_ = 0;
  bool committed_ = false;
};

}  // namespace instructflip
