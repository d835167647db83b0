// TensorBoard scalar event files, written directly (no TensorFlow/protobuf
// dependency): a TFRecord stream of `Event` protos, each record framed as
// length, masked CRC32C of the length, payload, masked CRC32C of the payload.
// `tensorboard --logdir RUN` shows the curves.
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace instructflip {

class TensorBoardWriter {
 public:
  // Creates DIR/events.out.tfevents.<unix time>.<host> and writes the version record.
  explicit TensorBoardWriter(const std::string& directory);
  void Scalar(const std::string& tag, int64_t step, float value);
  void Flush() { out_.flush(); }
  const std::string& path() const { return path_; }

 private:
  void WriteRecord(const std::string& payload);
  std::string path_;
  std::ofstream out_;
};

}  // namespace instructflip
