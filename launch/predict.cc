#include "launch/predict.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "dataio/augment.h"
#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/ordered_parallel.h"
#include "dataio/producers/ingest.h"
#include "model/instruction_batch.h"
#include "model/scoring.h"

namespace instructflip::launch {
namespace {

namespace fs = std::filesystem;

bool IsScorableFile(const fs::path& path) {
  static const std::set<std::string> kImages = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return kImages.count(ext) > 0 || IsVideoPath(path.string());
}

// Frames waiting for a forward pass, each with the file it belongs to.
struct PendingFrames {
  std::vector<RgbImage> frames;
  std::vector<size_t> file;   // index into the predictions
  std::vector<bool> explain;  // the first frame of a file to explain
};

}  // namespace

std::vector<std::string> ListPredictInputs(const std::vector<std::string>& arguments) {
  IF_REQUIRE(!arguments.empty(), "predict: give image or video files, or folders of them");
  std::vector<std::string> files;
  for (const std::string& argument : arguments) {
    IF_REQUIRE(fs::exists(argument), "predict: ", argument, ": no such file or directory");
    if (!fs::is_directory(argument)) {
      files.push_back(argument);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : fs::recursive_directory_iterator(argument, fs::directory_options::follow_directory_symlink))
      if (entry.is_regular_file() && IsScorableFile(entry.path())) found.push_back(entry.path().string());
    IF_REQUIRE(!found.empty(), "predict: ", argument, ": no image or video file in it (.jpg .jpeg .png .bmp .ppm "
               ".pgm .tif .tiff .webp .avi .mp4 .mov .mkv)");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

std::vector<Prediction> Predict(BuiltModel& built, const ScoringModel& scoring, const std::vector<std::string>& files,
                                const PredictOptions& o) {
  IF_REQUIRE(o.batch >= 1, "predict: --batch must be >= 1, got ", o.batch);
  IF_REQUIRE(o.explain <= 0 || !built.model->t5_model.is_empty() || !built.config.has_llm(),
             "predict: explanations need the model's language model (load it with explain)");
  const int size = built.config.vision.image_size;
  std::vector<Prediction> predictions(files.size());
  InstructionBatcher batcher(built.tokenizers.bert, built.tokenizers.t5, built.config, scoring.seed);
  built.model->eval();
  torch::NoGradGuard no_grad;
  const NormalizeOptions normalize;
  int64_t files_done = 0;

  // 1. One forward pass over the pending frames: scores, and the answers of those to explain.
  PendingFrames pending;
  auto score = [&] {
    const int64_t B = static_cast<int64_t>(pending.frames.size());
    if (B == 0) return;
    torch::Tensor images = torch::empty({B, 3, size, size}, torch::kFloat32);
    std::vector<int64_t> keys(B);
    for (int64_t i = 0; i < B; ++i) {
      const RgbImage& frame = pending.frames[i];
      TransformToChw(frame.pixels.data(), size, size, AugmentParams{}, normalize, images[i].data_ptr<float>());
      // A label-free key from the pixels alone (model/scoring.h): same file, same questions.
      keys[i] = static_cast<int64_t>(Crc32c(frame.pixels.data(), frame.pixels.size()));
    }
    const ScoredBatch scored = ScoreBatch(*built.model, UnlabeledBatch{images, torch::tensor(keys, torch::kLong)},
                                          scoring.style_question, batcher, o.device);
    const torch::Tensor scores = scored.spoof_score.to(torch::kCPU, torch::kFloat64).contiguous();
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < B; ++i) {
      predictions[pending.file[i]].frame_scores.push_back(scores.data_ptr<double>()[i]);
      if (pending.explain[i]) rows.push_back(i);
    }
    if (!rows.empty()) {
      const Answers answers = AnswerQuestions(*built.model, scored, rows, batcher.t5());
      for (size_t r = 0; r < rows.size(); ++r) {
        Prediction& p = predictions[pending.file[rows[r]]];
        p.explained = true;
        p.content_answer = answers.content[r];
        p.style_answer = answers.style[r];
        if (built.config.has_style_branch()) p.style_question = kStyleQuestionNames.Name(scored.first_pass.style[rows[r]]);
      }
    }
    pending = {};
  };

  // 2. Files read in parallel, in order; full batches scored as they fill.
  Progress progress("predict", "files", static_cast<int64_t>(files.size()), o.progress);
  OrderedParallel<InputFrames> reader(static_cast<int64_t>(files.size()), std::max(1, o.threads),
                                      4 * std::max(1, o.threads), [&](int64_t i) {
                                        return ReadInputFrames(files[i], size, o.video_frames, o.video_first_frame);
                                      });
  for (size_t f = 0; f < files.size(); ++f) {
    InputFrames input = *reader.Next();
    Prediction& p = predictions[f];
    p.path = files[f];
    p.error = input.skip_reason;
    p.frame_indices = input.frame_indices;
    for (size_t k = 0; k < input.frames.size(); ++k) {
      pending.frames.push_back(std::move(input.frames[k]));
      pending.file.push_back(f);
      pending.explain.push_back(k == 0 && static_cast<int64_t>(f) < o.explain);
      if (static_cast<int>(pending.frames.size()) == o.batch) {
        score();
        progress.Set(files_done);
      }
    }
    ++files_done;
  }
  score();
  progress.Set(files_done);
  progress.Finish();

  // 3. A file's score: the mean over its frames (a video's, as the metrics average them).
  for (Prediction& p : predictions) {
    if (p.frame_scores.empty()) continue;
    double sum = 0;
    for (double s : p.frame_scores) sum += s;
    p.spoof_probability = sum / static_cast<double>(p.frame_scores.size());
  }
  return predictions;
}

}  // namespace instructflip::launch
