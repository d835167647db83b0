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

}  // namespace instructflip
