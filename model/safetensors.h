// Reader and writer for the safetensors format (Hugging Face's weight files):
// an 8-byte little-endian header length N, N bytes of JSON header mapping each
// tensor name to {dtype, shape, data_offsets}, then the raw tensor bytes.
// The reader validates the whole header before any tensor is handed out, so a
// bad or hostile file is one instructflip::Error naming the file and problem.
#pragma once

#include "dataio/base/torch_compat.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataio/base/check.h"  // instructflip::Error, which every failure here throws

namespace instructflip {

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;            // the file's spelling: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;   // [] for a scalar
  uint64_t begin = 0, end = 0;  // byte range in the data buffer that follows the header
};

class SafetensorsFile {
 public:
  // Maps `path` read-only and validates it; throws instructflip::Error naming
  // the path and the problem.
  static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
  // Validates an in-memory buffer without copying it: the caller keeps `data`
  // alive as long as the returned object. `what` names the buffer in errors.
  static std::unique_ptr<SafetensorsFile> FromBuffer(const uint8_t* data, size_t size,
                                                     const std::string& what);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }  // sorted by name
  // nullptr if the file has no tensor `name`.
  const SafetensorsTensorInfo* Find(const std::string& name) const;
  // The header's "__metadata__" (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A new contiguous CPU tensor owning a copy of the bytes, with the file's
  // dtype (F16 -> kHalf, BF16 -> kBFloat16, F32 -> kFloat, ...). Throws
  // instructflip::Error naming the file and `name` if there is no such tensor.
  torch::Tensor Get(const std::string& name) const;

 private:
  SafetensorsFile(const uint8_t* data, size_t size, bool mapped, std::string what);
  void Parse();

  const uint8_t* data_;  // the whole file: length prefix, header, data buffer
  size_t size_;
  bool mapped_;              // data_ is our mmap and is unmapped by the destructor
  std::string what_;         // file path or caller's name, for error messages
  uint64_t data_start_ = 0;  // offset of the data buffer in data_ (8 + header length)
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any device, any layout: each is copied to contiguous CPU
// memory while it is written) to `path` atomically: a temp file, fsync, then
// rename over `path`. The layout is the one Hugging Face writes: names sorted,
// data contiguous in that order, header padded with spaces to a multiple of 8
// bytes. Throws instructflip::Error on a duplicate or reserved name, an
// undefined tensor, a dtype the format cannot hold, or an I/O failure.
void SaveSafetensors(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata = {});

}  // namespace instructflip
