#include "trainer/event_writer.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/file_util.h"

namespace instructflip {
namespace {

uint32_t MaskedCrc(const void* data, size_t size) {
  const uint32_t crc = Crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void Varint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void Tag(std::string* out, int field, int wire_type) { Varint(out, (uint64_t(field) << 3) | wire_type); }

void LengthDelimited(std::string* out, int field, const std::string& bytes) {
  Tag(out, field, 2);
  Varint(out, bytes.size());
  out->append(bytes);
}

template <typename T>
void Fixed(std::string* out, int field, T value) {
  Tag(out, field, sizeof(T) == 8 ? 1 : 5);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

std::string EventHeader(int64_t step) {
  std::string event;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  Fixed(&event, 1, now);
  Tag(&event, 2, 0);
  Varint(&event, static_cast<uint64_t>(step));
  return event;
}

// Minimal protobuf reading for the test reader.
uint64_t ReadVarint(const std::string& s, size_t* at) {
  uint64_t value = 0;
  for (int shift = 0; *at < s.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(s[(*at)++]);
    value |= uint64_t(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return value;
  }
  IF_FAIL("event file: truncated varint");
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  path_ = JoinPath(directory, "events.out.tfevents." + std::to_string(seconds) + "." + host);
  out_.open(path_, std::ios::binary | std::ios::app);
  IF_REQUIRE(out_.good(), "cannot create TensorBoard event file '", path_, "'");
  std::string event = EventHeader(0);
  LengthDelimited(&event, 3, "brain.Event:2");
  WriteRecord(event);
}

void TensorBoardWriter::WriteRecord(const std::string& payload) {
  const uint64_t length = payload.size();
  const uint32_t length_crc = MaskedCrc(&length, sizeof(length));
  const uint32_t payload_crc = MaskedCrc(payload.data(), payload.size());
  out_.write(reinterpret_cast<const char*>(&length), sizeof(length));
  out_.write(reinterpret_cast<const char*>(&length_crc), sizeof(length_crc));
  out_.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  out_.write(reinterpret_cast<const char*>(&payload_crc), sizeof(payload_crc));
}

void TensorBoardWriter::Scalar(const std::string& tag, int64_t step, float value) {
  std::string scalar;
  LengthDelimited(&scalar, 1, tag);
  Fixed(&scalar, 2, value);
  std::string summary;
  LengthDelimited(&summary, 1, scalar);
  std::string event = EventHeader(step);
  LengthDelimited(&event, 5, summary);
  WriteRecord(event);
}

std::vector<ScalarEvent> ReadScalarEvents(const std::string& path) {
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

}  // namespace instructflip
