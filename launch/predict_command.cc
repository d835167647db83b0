// instructflip predict / export: scoring one's own images with a trained model,
// and the deployment bundle predict reads (launch/predict.h, scoring_model.h).
#include <filesystem>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dist/device.h"
#include "launch/commands.h"
#include "launch/flags.h"
#include "launch/predict.h"
#include "launch/scoring_model.h"
#include "trainer/run_files.h"
#include "launch/version.h"
#include "launch/yaml_reader.h"

namespace instructflip::launch {
namespace {

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string Decision(const Prediction& p, double threshold) {
  if (!p.error.empty()) return "";
  return p.spoof_probability >= threshold ? "spoof" : "live";
}

std::string PredictionsCsv(const std::vector<Prediction>& predictions, double threshold, bool explain) {
  std::ostringstream out;
  out << "path,spoof_probability,decision,frames,error" << (explain ? ",content_answer,style_question,style_answer" : "")
      << "\n";
  for (const Prediction& p : predictions) {
    out << CsvField(p.path) << "," << (p.error.empty() ? ShortestNumberText(p.spoof_probability) : "") << ","
        << Decision(p, threshold) << "," << p.frame_scores.size() << "," << CsvField(p.error);
    if (explain) out << "," << CsvField(p.content_answer) << "," << p.style_question << "," << CsvField(p.style_answer);
    out << "\n";
  }
  return out.str();
}

std::string PredictionsJson(const std::vector<Prediction>& predictions, const ScoringModel& scoring, double threshold,
                            const std::string& threshold_rule) {
  nlohmann::json out{{"model", scoring.description},
                     {"threshold", threshold},
                     {"threshold_rule", threshold_rule},
                     {"decision", "spoof when spoof_probability >= threshold"},
                     {"style_question", kScoringStyleQuestions.Name(scoring.style_question)},
                     {"instructflip", VersionString()},
                     {"predictions", nlohmann::json::array()}};
  for (const Prediction& p : predictions) {
    nlohmann::json row{{"path", p.path}};
    if (p.error.empty()) {
      row["spoof_probability"] = p.spoof_probability;
      row["decision"] = Decision(p, threshold);
      row["frame_scores"] = p.frame_scores;
      if (!p.frame_indices.empty()) row["video_frames"] = p.frame_indices;
    } else {
      row["error"] = p.error;
    }
    if (p.explained) {
      row["content_answer"] = p.content_answer;
      if (!p.style_question.empty()) row["style_question"] = p.style_question, row["style_answer"] = p.style_answer;
    }
    out["predictions"].push_back(std::move(row));
  }
  return out.dump(2) + "\n";
}

// --threshold given, or the model's stored one; nullopt when neither.
std::optional<std::pair<double, std::string>> ChosenThreshold(const ScoringModel& scoring, const std::string& when) {
  if (const std::optional<double> given = ThresholdFlag(kWithoutThresholdStored))
    return std::pair{*given, "given by the user (--threshold) " + when};
  if (scoring.threshold) return std::pair{*scoring.threshold, scoring.threshold_rule};
  return std::nullopt;
}

int RunPredict(const std::vector<std::string>& args) {
  const DeviceRequest device = kDeviceRequests.Parse(FLAGS_device, "--device");
  IF_REQUIRE(FLAGS_out.empty() || FLAGS_out.size() > 4, "--out must end in .csv or .json, got '", FLAGS_out, "'");
  const bool json = FLAGS_json || (FLAGS_out.size() > 5 && FLAGS_out.substr(FLAGS_out.size() - 5) == ".json");
  IF_REQUIRE(FLAGS_out.empty() || json || FLAGS_out.substr(FLAGS_out.size() - 4) == ".csv",
             "--out must end in .csv or .json, got '", FLAGS_out, "'");
  if (!FLAGS_out.empty()) RequireWritableFilePath(FLAGS_out, "--out");
  IF_REQUIRE(FLAGS_explain >= 0, "--explain must be >= 0, got ", FLAGS_explain);
  IF_REQUIRE(FLAGS_video_frames >= 1, "--video-frames must be >= 1, got ", FLAGS_video_frames);
  IF_REQUIRE(FLAGS_video_first_frame >= 0, "--video-first-frame must be >= 0, got ", FLAGS_video_first_frame);
  IF_REQUIRE(FLAGS_batch >= 1, "--batch must be >= 1, got ", FLAGS_batch);
  IF_REQUIRE(FLAGS_threads >= 1 && FLAGS_threads <= 256, "--threads must be in 1..256, got ", FLAGS_threads);
  // 1. What to score and with what, all checked before any compute.
  const std::vector<std::string> files = ListPredictInputs(args);
  ScoringModel scoring = FindScoringModel(FLAGS_model);
  const auto threshold = ChosenThreshold(scoring, "at predict");
  IF_REQUIRE(threshold.has_value(), "predict: ", scoring.description,
             " has no stored threshold (a bundle or a LODO job's selected checkpoint has one); give --threshold T");
  // 2. The model: no T5 unless answers are asked for.
  const bool explain = FLAGS_explain > 0;
  BuiltModel built = LoadScoringModel(scoring, explain);
  PredictOptions options;
  options.device = SelectDevice(device, WorldInfo{}, "--device");
  built.model->to(options.device);
  options.batch = FLAGS_batch;
  options.threads = FLAGS_threads;
  options.video_frames = FLAGS_video_frames;
  options.video_first_frame = FLAGS_video_first_frame;
  options.explain = FLAGS_explain;
  options.progress = ProgressFlags();
  // 3. Score, write, and say what could not be read.
  const std::vector<Prediction> predictions = Predict(built, scoring, files, options);
  const std::string text = json ? PredictionsJson(predictions, scoring, threshold->first, threshold->second)
                                : PredictionsCsv(predictions, threshold->first, explain);
  if (FLAGS_out.empty()) {
    std::cout << text;
  } else {
    WriteFileAtomic(FLAGS_out, text);
    if (!FLAGS_quiet)
      std::cerr << "predict: " << predictions.size() << " file(s) scored with " << scoring.description
                << ", threshold " << threshold->first << " (" << threshold->second << "), into " << FLAGS_out << "\n";
  }
  int64_t unreadable = 0;
  for (const Prediction& p : predictions) unreadable += !p.error.empty();
  IF_REQUIRE(unreadable == 0, "predict: ", unreadable, " of ", predictions.size(),
             " file(s) could not be read (their rows give the reason)");
  return 0;
}

int RunExport(const std::vector<std::string>& args) {
  IF_REQUIRE(args.empty(), "export takes no positional arguments");
  IF_REQUIRE(!FLAGS_out.empty() || !FLAGS_hf.empty(), "'export' needs --out DIR (a bundle) or --hf DIR (or both)");
  // Both outputs checked before either is written.
  if (!FLAGS_out.empty()) RequireAbsentOrEmpty(FLAGS_out, "--out");
  if (!FLAGS_hf.empty()) RequireAbsentOrEmpty(FLAGS_hf, "--hf");
  auto same_directory = [](const std::string& a, const std::string& b) {
    auto normal = [](const std::string& p) {
      std::filesystem::path n = std::filesystem::weakly_canonical(p);
      return n.filename().empty() ? n.parent_path() : n;  // "my-model/"
    };
    return normal(a) == normal(b);
  };
  IF_REQUIRE(FLAGS_out.empty() || FLAGS_hf.empty() || !same_directory(FLAGS_out, FLAGS_hf),
             "--out and --hf name the same directory '", FLAGS_out,
             "'; a bundle and a Hugging Face model each need their own");
  ScoringModel scoring = FindScoringModel(FLAGS_model);
  if (const auto threshold = ChosenThreshold(scoring, "at export")) {
    scoring.threshold = threshold->first;
    scoring.threshold_rule = threshold->second;
  }
  if (!FLAGS_out.empty()) {
    ExportBundle(scoring, FLAGS_out);
    std::cout << "export: bundle " << FLAGS_out << " from " << scoring.description << " (threshold "
              << *scoring.threshold << ")\n";
  }
  if (!FLAGS_hf.empty()) {
    BuiltModel built = LoadScoringModel(scoring, /*language_model=*/false);
    ExportHuggingFaceClipVision(*built.model, FLAGS_hf);
    std::cout << "export: CLIPVisionModel " << FLAGS_hf << " (config.json, model.safetensors)\n";
  }
  return 0;
}

}  // namespace

std::vector<Command> PredictCommands() {
  const std::string model_help = "a bundle (export --out), a finished LODO job directory, or a checkpoint";
  return {{"predict", "FILE|DIR...",
           "score images and videos (folders searched recursively): spoof probability and decision per file",
           {Required("model", "PATH", model_help),
            Optional("out", "FILE", "write FILE.csv or FILE.json").Absent("CSV on stdout"),
            Switch("json", "JSON instead of CSV"),
            Optional("threshold", "T", "decision threshold in [0, 1]").Absent("the model's stored threshold"),
            Optional("explain", "N", "the T5's answers for the first N files (loads the T5)", "0"),
            Optional("batch", "N", "frames per forward pass", "32"),
            Optional("threads", "N", "file readers", "2"),
            Optional("video_frames", "N", "frames sampled per video, as ingest", "2"),
            Optional("video_first_frame", "N", "first frame sampled, as ingest", "6"),
            Optional("device", kDeviceRequests.Alternatives(), "where the model runs", "auto"),
            Switch("quiet", "no progress lines")},
           false, "", RunPredict},
          {"export", "", "a deployment bundle that predict reads, and/or the CLIP vision tower for Hugging Face",
           {Required("model", "PATH", "a finished LODO job directory, a checkpoint, or a bundle (exported again)"),
            Optional("out", "DIR", "write a bundle here (absent or empty)"),
            Optional("hf", "DIR", "write the trained CLIP vision tower as a Hugging Face CLIPVisionModel"),
            Optional("threshold", "T", "decision threshold in [0, 1] stored in the bundle")
                .Absent("the model's stored threshold")},
           false, "", RunExport}};
}

}  // namespace instructflip::launch
