// manifest.json of a meta-domain store: the domain table, per-domain counts, the
// shard list with sizes and checksums, and the inputs an ingest skipped.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace instructflip {

struct DomainCounts {
  // counts[split][label]: split 0 train / 1 test, label 0 live / 1 spoof
  std::array<std::array<int64_t, 2>, 2> counts{};
  int64_t total() const {
    return counts[0][0] + counts[0][1] + counts[1][0] + counts[1][1];
  }
};

struct DomainEntry {
  std::string name;
  DomainCounts counts;
};

struct ShardEntry {
  std::string path;        // relative to the store directory, e.g. "shard-00000.h5"
  int64_t num_samples = 0;
  int64_t bytes = 0;       // file size
  uint32_t crc32c = 0;     // of the whole file
};

struct SkippedInput {
  std::string source;
  std::string reason;
};

struct Manifest {
  int schema_version = 0;
  int image_size = 0;
  int jpeg_quality = 0;
  std::vector<DomainEntry> domains;  // index = domain code in the shards
  std::vector<ShardEntry> shards;
  std::vector<SkippedInput> skipped;

  int64_t num_samples() const;
  // Index of `name`, or -1.
  int FindDomain(const std::string& name) const;
};

// Serialises to pretty JSON.
std::string ManifestToJson(const Manifest& manifest);

// Parses and validates; errors name `file` and the offending field and value
// (schema version, shard paths that are absolute or leave the store, negative
// counts, duplicate domain names ...).
Manifest ManifestFromJson(const std::string& text, const std::string& file);

// Reads DIR/manifest.json; a missing file is an error saying DIR is not a store.
Manifest ReadManifest(const std::string& dir);

}  // namespace instructflip
