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

// One record of an event file, as far as the tests look.
struct Event {
  enum class Kind { kVersion, kScalar, kText, kImage, kHParams, kSessionStart, kOther } kind = Kind::kOther;
  int64_t step = 0;
  std::string tag;
  float value = 0;     // scalar
  std::string bytes;   // text, or the image's PNG
  int height = 0, width = 0;
};

// A length-delimited field's bytes at *at (after its key).
inline std::string ReadBytes(const std::string& s, size_t* at) {
  const uint64_t n = ReadVarint(s, at);
  IF_REQUIRE(*at + n <= s.size(), "event file: truncated field");
  std::string out = s.substr(*at, n);
  *at += n;
  return out;
}

// Calls field(number, wire type, varint value, bytes) for each field of a message.
template <typename F>
inline void ForEachField(const std::string& message, F field) {
  for (size_t i = 0; i < message.size();) {
    const uint64_t key = ReadVarint(message, &i);
    const int number = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (wire == 0) {
      field(number, wire, ReadVarint(message, &i), std::string());
    } else if (wire == 1 || wire == 5) {
      const size_t n = wire == 1 ? 8 : 4;
      IF_REQUIRE(i + n <= message.size(), "event file: truncated fixed field");
      field(number, wire, 0, message.substr(i, n));
      i += n;
    } else if (wire == 2) {
      field(number, wire, 0, ReadBytes(message, &i));
    } else {
      IF_FAIL("event file: unexpected wire type ", wire);
    }
  }
}

// Every record of an event file; throws instructflip::Error on a bad checksum.
inline std::vector<Event> ReadEvents(const std::string& path) {
  const std::string data = ReadFile(path);
  std::vector<Event> out;
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
    Event event;
    ForEachField(payload, [&](int number, int, uint64_t varint, const std::string& bytes) {
      if (number == 2) event.step = static_cast<int64_t>(varint);
      if (number == 3) event.kind = Event::Kind::kVersion;
      if (number == 6)  // SessionLog { status = 1 }
        ForEachField(bytes, [&](int n, int, uint64_t v, const std::string&) {
          if (n == 1 && v == 1) event.kind = Event::Kind::kSessionStart;
        });
      if (number != 5) return;
      ForEachField(bytes, [&](int, int, uint64_t, const std::string& value) {  // Summary.value
        ForEachField(value, [&](int n, int, uint64_t, const std::string& b) {
          if (n == 1) event.tag = b;
          if (n == 2) event.kind = Event::Kind::kScalar, std::memcpy(&event.value, b.data(), 4);
          if (n == 4) {  // Image
            event.kind = Event::Kind::kImage;
            ForEachField(b, [&](int m, int, uint64_t v, const std::string& png) {
              if (m == 1) event.height = static_cast<int>(v);
              if (m == 2) event.width = static_cast<int>(v);
              if (m == 4) event.bytes = png;
            });
          }
          if (n == 8 && event.kind != Event::Kind::kHParams)  // TensorProto: string_val = 8
            ForEachField(b, [&](int m, int, uint64_t, const std::string& text) {
              if (m == 8) event.kind = Event::Kind::kText, event.bytes = text;
            });
          if (n == 9 && b.find("hparams") != std::string::npos) event.kind = Event::Kind::kHParams;
        });
      });
    });
    out.push_back(event);
  }
  return out;
}

// The scalar records of an event file.
inline std::vector<ScalarEvent> ReadScalarEvents(const std::string& path) {
  std::vector<ScalarEvent> out;
  for (const Event& e : ReadEvents(path))
    if (e.kind == Event::Kind::kScalar) out.push_back({e.tag, e.step, e.value});
  return out;
}

// What TensorBoard shows of a run directory's event files: each file in name
// (time) order; a session start at step S drops the earlier files' events at
// S or later (EventAccumulator's purge of a restarted run).
inline std::vector<Event> TensorBoardView(const std::vector<std::string>& files_in_order) {
  std::vector<Event> shown;
  for (const std::string& file : files_in_order)
    for (const Event& e : ReadEvents(file)) {
      if (e.kind == Event::Kind::kSessionStart) {
        std::vector<Event> kept;
        for (const Event& old : shown)
          if (old.step < e.step) kept.push_back(old);
        shown = kept;
      }
      shown.push_back(e);
    }
  return shown;
}

}  // namespace instructflip::testing
