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

namespace {

// An Event holding one summary Value (its bytes).
std::string SummaryEvent(int64_t step, const std::string& value) {
  std::string summary;
  LengthDelimited(&summary, 1, value);
  std::string event = EventHeader(step);
  LengthDelimited(&event, 5, summary);
  return event;
}

std::string PluginMetadata(const std::string& plugin, const std::string& content = "") {
  std::string plugin_data;
  LengthDelimited(&plugin_data, 1, plugin);
  if (!content.empty()) LengthDelimited(&plugin_data, 2, content);
  std::string metadata;
  LengthDelimited(&metadata, 1, plugin_data);
  return metadata;
}

}  // namespace

void TensorBoardWriter::SessionStart(int64_t step) {
  std::string session_log;
  Tag(&session_log, 1, 0);
  Varint(&session_log, 1);  // START
  std::string event = EventHeader(step);
  LengthDelimited(&event, 6, session_log);
  WriteRecord(event);
}

void TensorBoardWriter::Text(const std::string& tag, int64_t step, const std::string& markdown) {
  std::string tensor;
  Tag(&tensor, 1, 0);
  Varint(&tensor, 7);                   // DT_STRING
  LengthDelimited(&tensor, 2, "");      // scalar shape
  LengthDelimited(&tensor, 8, markdown);
  std::string value;
  LengthDelimited(&value, 1, tag);
  LengthDelimited(&value, 8, tensor);
  LengthDelimited(&value, 9, PluginMetadata("text"));
  WriteRecord(SummaryEvent(step, value));
}

void TensorBoardWriter::Image(const std::string& tag, int64_t step, const std::string& png, int height, int width) {
  std::string image;
  Tag(&image, 1, 0);
  Varint(&image, static_cast<uint64_t>(height));
  Tag(&image, 2, 0);
  Varint(&image, static_cast<uint64_t>(width));
  Tag(&image, 3, 0);
  Varint(&image, 3);  // RGB
  LengthDelimited(&image, 4, png);
  std::string value;
  LengthDelimited(&value, 1, tag);
  LengthDelimited(&value, 4, image);
  WriteRecord(SummaryEvent(step, value));
}

void TensorBoardWriter::HParams(const std::vector<std::pair<std::string, double>>& numbers,
                                const std::vector<std::pair<std::string, std::string>>& texts) {
  // HParamsPluginData { int32 version = 1; SessionStartInfo session_start_info = 3; }
  // SessionStartInfo { map<string, google.protobuf.Value> hparams = 1; double start_time_secs = 5; }
  // google.protobuf.Value { double number_value = 2; string string_value = 3; }
  std::string start;
  auto entry = [&](const std::string& name, const std::string& value) {
    std::string item;
    LengthDelimited(&item, 1, name);
    LengthDelimited(&item, 2, value);
    LengthDelimited(&start, 1, item);
  };
  for (const auto& [name, number] : numbers) {
    std::string value;
    Fixed(&value, 2, number);
    entry(name, value);
  }
  for (const auto& [name, text] : texts) {
    std::string value;
    LengthDelimited(&value, 3, text);
    entry(name, value);
  }
  Fixed(&start, 5, std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  std::string data;
  Tag(&data, 1, 0);
  Varint(&data, 0);
  LengthDelimited(&data, 3, start);
  std::string null_tensor;  // the plugin's summaries carry an empty float tensor
  Tag(&null_tensor, 1, 0);
  Varint(&null_tensor, 1);  // DT_FLOAT
  LengthDelimited(&null_tensor, 2, "");
  std::string value;
  LengthDelimited(&value, 1, "_hparams_/session_start_info");
  LengthDelimited(&value, 8, null_tensor);
  LengthDelimited(&value, 9, PluginMetadata("hparams", data));
  WriteRecord(SummaryEvent(0, value));
}

void TensorBoardWriter::Scalar(const std::string& tag, int64_t step, float value) {
  std::string scalar;
  LengthDelimited(&scalar, 1, tag);
  Fixed(&scalar, 2, value);
  WriteRecord(SummaryEvent(step, scalar));
}

}  // namespace instructflip
