// Store: a meta-domain store opened for reading. Holds the manifest, the
// concatenated sample table of all shards and, per sample, where its image bytes
// sit in which shard file. Reads are thread-safe pread(2)s; every read checks
// the sample's CRC32C so a damaged byte never reaches training unnoticed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataio/base/progress.h"
#include "dataio/jpeg_codec.h"
#include "dataio/manifest.h"
#include "dataio/shard_file.h"

namespace instructflip {

struct VerifyReport {
  bool ok = true;
  int64_t shards_checked = 0;
  int64_t samples_checked = 0;
  std::string first_error;  // names the shard and sample
};

class Store {
 public:
  // Opens and validates DIR (manifest fields, shard paths inside the store,
  // shard sizes, column ranges, counts vs manifest). An empty store is an error.
  static std::shared_ptr<const Store> Open(const std::string& dir);
  ~Store();

  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  const SampleTable& table() const { return table_; }
  int64_t size() const { return table_.size(); }
  int image_size() const { return manifest_.image_size; }

  // Image bytes (JPEG or PNG, image_codec.h) of sample i, CRC-checked (error names shard and sample).
  void ReadImageBytes(int64_t i, std::vector<uint8_t>* out) const;
  // "shard-00002.h5 sample 17 (source ...)" for messages.
  std::string Describe(int64_t i) const;

  // Domain indices for names; an unknown name is an error listing the known ones.
  std::vector<int> ResolveDomains(const std::vector<std::string>& names) const;

  // Sample i as pixels: its bytes (CRC-checked), a header that must give the
  // store's image size (checked before any pixel memory is taken), decoded.
  // Errors name shard and sample. `bytes` is scratch space.
  void DecodeSample(int64_t i, std::vector<uint8_t>* bytes, RgbImage* out) const;

  // Re-checks each shard file's CRC32C and every sample's CRC32C and image
  // header (its size included); `deep` also decodes every image.
  // `progress`: samples checked (dataio/base/progress.h); empty: none.
  VerifyReport Verify(bool deep = false, const ProgressSink& progress = {}) const;

 private:
  // ReadImageBytes, then the header's size against the store's image size.
  void ReadCheckedImage(int64_t i, std::vector<uint8_t>* bytes) const;

  struct ShardHandle {
    std::string path;
    int fd = -1;
    int64_t jpeg_file_offset = 0;
    int64_t first_sample = 0;
  };
  Store() = default;

  std::string dir_;
  Manifest manifest_;
  SampleTable table_;
  std::vector<ShardHandle> shards_;
  std::vector<int32_t> sample_shard_;    // (N,) shard of each sample
  std::vector<int64_t> sample_offset_;   // (N,) byte offset inside the shard's jpeg dataset
  std::vector<int32_t> sample_length_;   // (N,) image byte length
};

}  // namespace instructflip
