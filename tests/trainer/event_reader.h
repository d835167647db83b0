// A reader of TensorBoard event files for the tests, written apart from the
// writer (trainer/event_writer.h) so that it checks the writer's records and
// checksums instead of sharing its code.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/file_util.h"

namespace instructflip::testing {

struct ScalarEvent {
  std::string tag;
  int64_t step = 0;
  float value = 0;
};

// TFRecord's masked CRC32C.
inline uint32_t MaskedCrc(const void* data, size_t size) {
  const uint32_t crc = Crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

inline uint64_t ReadVarint(const std::string& s, size_t* at) {
  uint64_t value = 0;
  for (int shift = 0; *at < s.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(s[(*at)++]);
    value |= uint64_t(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return value;
  }
  IF_FAIL("event file: truncated varint");
}

// The scalar records of an event file; throws instructflip::Error on a bad checksum.
inline std::vector<ScalarEvent> ReadScalarEvents(const std::string& path) {
  const std::string data = ReadFile(path);
  std::vector<ScalarEvent> out;
  size_t at = 0;
  while (at < data.size()) {
    IF_REQUIRE(at + 12 <= data.size(), path, ": truncated record header");
    uint64_t length;
    uint32_t length_crc;
    std::memcpy(&length, &data[at], 8);
    std::memcpy(&length_crc, &data[at + 8], 4);
    IF_REQUIRE(MaskedCrc(&length, 8) == length_crc, path, ": bad length checksum at byte ", at);
    IF_REQUIRE(at + 12 + length + 4 <= data.size(), path, ": truncated record");
    const std::string payload = data.substr(at + 12, length);
    uint32_t payload_crc;
    std::memcpy(&payload_crc, &data[at + 12 + length], 4);
    IF_REQUIRE(MaskedCrc(payload.data(), payload.size()) == payload_crc, path, ": bad payload checksum at byte ", at);
    at += 12 + length + 4;
    // Event: find step (2) and summary (5) -> value (1) -> tag (1), simple_value (2).
    ScalarEvent event;
    bool has_value = false;
    for (size_t i = 0; i < payload.size();) {
      const uint64_t key = ReadVarint(payload, &i);
      const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
      if (wire == 0) {
        const uint64_t v = ReadVarint(payload, &i);
        if (field == 2) event.step = static_cast<int64_t>(v);
      } else if (wire == 1) {
        i += 8;
      } else if (wire == 5) {
        i += 4;
      } else if (wire == 2) {
        const uint64_t n = ReadVarint(payload, &i);
        const std::string bytes = payload.substr(i, n);
        i += n;
        if (field != 5) continue;
        size_t j = 0;
        ReadVarint(bytes, &j);  // Summary.value (field 1)
        const uint64_t value_length = ReadVarint(bytes, &j);
        const std::string value = bytes.substr(j, value_length);
        for (size_t k = 0; k < value.size();) {
          const uint64_t value_key = ReadVarint(value, &k);
          if ((value_key >> 3) == 1) {
            const uint64_t tag_length = ReadVarint(value, &k);
            event.tag = value.substr(k, tag_length);
            k += tag_length;
          } else if ((value_key >> 3) == 2) {
            std::memcpy(&event.value, &value[k], 4);
            k += 4;
            has_value = true;
          } else {
            IF_FAIL(path, ": unexpected field in a summary value");
          }
        }
      }
    }
    if (has_value) out.push_back(event);
  }
  return out;
}

}  // namespace instructflip::testing
