// `instructflip predict`: spoof probabilities of image and video files with a
// trained model (launch/scoring_model.h), without a store, a label or the
// training YAML.
//
// Each file is read as ingest reads it (dataio/producers/ingest.h: the whole
// image, or VideoFrameIndices frames of a video, resized to the model's input
// size) and normalised as evaluation does; a video's score is the mean of its
// frames' scores, as the metrics average a video's frames. The scoring rule is
// the model's (evaluation's eval.style_question); under `uniform` a frame's
// style question is drawn from a key that is the CRC32C of its pixels, so a
// file's score does not depend on the other files or their order (beyond the
// float rounding, ~1e-7, of matrix products over batches of another size).
// Evaluation keys by store index instead: with a fixed or ensemble rule and
// the same batch size, predict and eval give the same scores for the same
// pixels (tests/launch/predict_test.sh).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dataio/base/progress.h"
#include "launch/scoring_model.h"

namespace instructflip::launch {

struct PredictOptions {
  int batch = 32;                // frames per forward pass
  int threads = 2;               // file readers
  int video_frames = 2;          // as ingest
  int video_first_frame = 6;
  int explain = 0;               // the first N files get the T5's answers (the model needs its T5)
  torch::Device device = torch::kCPU;
  ProgressSink progress;  // files scored (dataio/base/progress.h); empty: none
};

struct Prediction {
  std::string path;
  std::vector<int64_t> frame_indices;  // a video's frames read; empty for an image
  std::vector<double> frame_scores;    // P(spoof) per frame
  double spoof_probability = std::nan("");  // their mean; NaN when the file could not be read
  std::string error;                   // why the file could not be read
  bool explained = false;
  std::string content_answer, style_question, style_answer;  // of the first frame, when explained
};

// The files to score, in order: each argument that is a file, and the image and
// video files under each argument that is a directory (recursively, sorted).
// A path that does not exist, or a directory with no such file, is an Error.
std::vector<std::string> ListPredictInputs(const std::vector<std::string>& arguments);

// One prediction per file, in the order given. A file that cannot be read is
// reported in its Prediction, not thrown.
std::vector<Prediction> Predict(BuiltModel& built, const ScoringModel& scoring, const std::vector<std::string>& files,
                                const PredictOptions& options);

}  // namespace instructflip::launch
