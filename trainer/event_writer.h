// TensorBoard event files, written directly (no TensorFlow/protobuf
// dependency): a TFRecord stream of `Event` protos, each record framed as
// length, masked CRC32C of the length, payload, masked CRC32C of the payload.
// `tensorboard --logdir RUN` shows the curves, texts, images and hparams.
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//                SessionLog session_log = 6; }
//   SessionLog { SessionStatus status = 1; }            START = 1
//   Summary    { repeated Value value = 1; }
//   Value      { string tag = 1; float simple_value = 2; Image image = 4; TensorProto tensor = 8;
//                SummaryMetadata metadata = 9; }
//   Image      { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//   SummaryMetadata { PluginData plugin_data = 1 { string plugin_name = 1; bytes content = 2; } }
//   TensorProto { DataType dtype = 1; TensorShapeProto tensor_shape = 2; repeated float float_val = 5;
//                 repeated bytes string_val = 8; }          DT_FLOAT = 1, DT_STRING = 7
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
  // A session (re)starting at `step`: TensorBoard drops every event of an
  // earlier file at this step or later, so a run resumed from a checkpoint
  // shows each step once, not the killed run's stale tail beside the new one.
  void SessionStart(int64_t step);
  // Markdown text (the text plugin), e.g. the resolved configuration.
  void Text(const std::string& tag, int64_t step, const std::string& markdown);
  // A PNG image (RGB) of height x width.
  void Image(const std::string& tag, int64_t step, const std::string& png, int height, int width);
  // The run's hyper-parameters (the hparams plugin's session start; its
  // metrics are the scalars of this directory), as name -> number or text.
  void HParams(const std::vector<std::pair<std::string, double>>& numbers,
               const std::vector<std::pair<std::string, std::string>>& texts);
  void Flush() { out_.flush(); }
  const std::string& path() const { return path_; }

 private:
  void WriteRecord(const std::string& payload);
  std::string path_;
  std::ofstream out_;
};

}  // namespace instructflip
