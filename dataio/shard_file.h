// One HDF5 shard of a meta-domain store (layout in dataio/README.md): a flat
// contiguous uint8 `jpeg` dataset with int64 `offsets` (N+1) and one 1-D
// dataset per attribute column. Only standard HDF5 types (no vlen) so h5py,
// h5dump and any HDF5 tool read it.
//
// Readers use HDF5 only to open the shard and read the small columns; image
// bytes are then fetched with pread(2) at the `jpeg` dataset's file offset,
// which keeps the loader's threads off HDF5's global lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataio/schema.h"

namespace instructflip {

// Per-sample attribute columns (everything but the image bytes). Also the
// in-memory table of a whole opened store (shards concatenated).
struct SampleTable {
  std::vector<int8_t> label;          // (N,)
  std::vector<int8_t> spoof_type;     // (N,)
  std::vector<int8_t> illumination;   // (N,)
  std::vector<int8_t> environment;    // (N,)
  std::vector<int8_t> camera_quality; // (N,)
  std::vector<int8_t> split;          // (N,) 0 train, 1 test
  std::vector<int32_t> domain;        // (N,) index into the manifest's domain table
  std::vector<int64_t> video_id;      // (N,)
  std::vector<int64_t> subject_id;    // (N,)
  std::vector<uint32_t> crc32c;       // (N,) CRC32C of each sample's JPEG bytes
  std::vector<std::string> source;    // (N,) stored as fixed-length strings

  int64_t size() const { return static_cast<int64_t>(label.size()); }
  void Append(const SampleTable& other);
  void Push(int domain, const SampleAttributes& attributes, uint32_t crc);
  SampleAttributes Attributes(int64_t i) const;
};

struct ShardColumns {
  std::vector<uint8_t> jpeg;          // (total_bytes,) concatenated JPEG streams
  std::vector<int64_t> offsets{0};    // (N+1,) sample i is jpeg[offsets[i], offsets[i+1])
  SampleTable table;

  int64_t size() const { return table.size(); }
};

struct ShardHeader {
  int schema_version = 0;
  int image_size = 0;
  int64_t jpeg_file_offset = -1;  // byte offset of the `jpeg` dataset in the file
  int64_t jpeg_bytes = 0;
};

// Writes `path` (no temp handling: the caller renames it into place).
void WriteShardFile(const std::string& path, const ShardColumns& columns, int image_size,
                    const std::vector<std::string>& domain_names);

// Reads every column except the JPEG bytes (and those too when `with_jpeg`).
// Validates shapes, offsets and value ranges; errors name the file and dataset.
ShardColumns ReadShardFile(const std::string& path, bool with_jpeg, ShardHeader* header);

}  // namespace instructflip
