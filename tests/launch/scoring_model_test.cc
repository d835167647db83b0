// predict's model and inputs (launch/scoring_model.h, launch/predict.h): a
// model built without its T5 scores exactly as the whole one, a video scores
// the mean of its sampled frames, the Hugging Face export reads back through
// our own CLIP loader, and the resolved configuration holds every key.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dataio/base/file_util.h"
#include "dataio/png_codec.h"
#include "dataio/producers/ingest.h"
#include "launch/model_config_yaml.h"
#include "launch/predict.h"
#include "launch/scoring_model.h"
#include "launch/train_config_yaml.h"
#include "launch/yaml_reader.h"
#include "model/instructions.h"
#include "model/safetensors.h"
#include "model/t5_tokenizer.h"
#include "model/wordpiece_tokenizer.h"
#include "model/weights.h"
#include "tests/common/test_util.h"
#include "trainer/run_files.h"

#if INSTRUCTFLIP_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace instructflip::launch {
namespace {

namespace fs = std::filesystem;
using instructflip::testing::ErrorOf;
using instructflip::testing::TempDir;

const std::string kSource = INSTRUCTFLIP_SOURCE_DIR;

// A tiny model with random weights saved as a checkpoint would save them.
ScoringModel TinyScoringModel(const std::string& dir, ScoringStyleQuestion rule) {
  ScoringModel m;
  m.config = LoadModelConfig(kSource + "/configs/model/tiny.yaml");
  torch::manual_seed(3);
  BuiltModel built = BuildModel(m.config, {.language_model = true, .pretrained = false});
  m.weights = JoinPath(dir, "model.safetensors");
  SaveModelWeights(*built.model, m.weights);
  m.style_question = rule;
  m.seed = 2;
  m.threshold = 0.5;
  m.description = "test model";
  return m;
}

void WriteRgbPng(const std::string& path, const RgbImage& image) {
  WritePng(path, image.pixels.data(), image.width, image.height, 3);
}

// Deterministic textured pixels.
RgbImage Texture(int width, int height, int seed) {
  RgbImage image{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>((i * 37 + seed * 101) % 251);
  return image;
}

TEST(ScoringModel, WithoutTheLanguageModelScoresAsTheWholeModel) {
  TempDir tmp;
  const ScoringModel m = TinyScoringModel(tmp.path, ScoringStyleQuestion::kUniform);
  std::vector<std::string> files;
  for (int i = 0; i < 5; ++i) {
    files.push_back(JoinPath(tmp.path, "face" + std::to_string(i) + ".png"));
    WriteRgbPng(files.back(), Texture(70 + i, 90, i));
  }
  BuiltModel lean = LoadScoringModel(m, /*language_model=*/false);
  BuiltModel whole = LoadScoringModel(m, /*language_model=*/true);
  EXPECT_TRUE(lean.model->t5_model.is_empty());
  for (const auto& item : lean.model->named_parameters()) EXPECT_NE(item.key().rfind("t5_model.", 0), 0u) << item.key();
  PredictOptions options;
  options.batch = 2;  // batches across files: a file's score must not depend on its neighbours
  const std::vector<Prediction> a = Predict(lean, m, files, options);
  options.batch = 5;
  options.explain = 2;
  const std::vector<Prediction> b = Predict(whole, m, files, options);
  ASSERT_EQ(a.size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_TRUE(a[i].error.empty()) << a[i].error;
    EXPECT_NEAR(a[i].spoof_probability, b[i].spoof_probability, 1e-6) << files[i];
    EXPECT_EQ(b[i].explained, i < 2);
    EXPECT_FALSE(a[i].explained);
  }
  EXPECT_FALSE(b[0].content_answer.empty());
  EXPECT_FALSE(b[0].style_question.empty());
  // The same file twice, in another order: the same score (uniform keys come
  // from the pixels), up to the float rounding of another batch size.
  const std::vector<Prediction> again = Predict(lean, m, {files[3], files[0], files[3]}, {});
  EXPECT_NEAR(again[0].spoof_probability, a[3].spoof_probability, 1e-6);
  EXPECT_DOUBLE_EQ(again[2].spoof_probability, again[0].spoof_probability);
  EXPECT_NEAR(again[1].spoof_probability, a[0].spoof_probability, 1e-6);
  EXPECT_NE(ErrorOf([&] { Predict(lean, m, files, {.explain = 1}); }).find("need the model's language model"),
            std::string::npos);
}

TEST(ScoringModel, AnUnreadableFileIsReportedAndTheRestScored) {
  TempDir tmp;
  const ScoringModel m = TinyScoringModel(tmp.path, ScoringStyleQuestion::kEnsemble);
  const std::string good = JoinPath(tmp.path, "good.png"), bad = JoinPath(tmp.path, "bad.jpg");
  WriteRgbPng(good, Texture(64, 64, 1));
  WriteFileAtomic(bad, "\xFF\xD8\xFF truncated");
  BuiltModel built = LoadScoringModel(m, false);
  const std::vector<Prediction> p = Predict(built, m, {bad, good}, {});
  EXPECT_FALSE(p[0].error.empty());
  EXPECT_TRUE(std::isnan(p[0].spoof_probability));
  EXPECT_TRUE(p[1].error.empty());
  EXPECT_GT(p[1].spoof_probability, 0.0);
  // Folders are searched recursively, sorted; a missing path or an empty folder is refused.
  fs::create_directories(JoinPath(tmp.path, "sub/empty"));
  WriteRgbPng(JoinPath(tmp.path, "sub/a.png"), Texture(8, 8, 2));
  WriteFileAtomic(JoinPath(tmp.path, "sub/notes.txt"), "not an image");
  EXPECT_EQ(ListPredictInputs({JoinPath(tmp.path, "sub")}), std::vector<std::string>{JoinPath(tmp.path, "sub/a.png")});
  EXPECT_NE(ErrorOf([&] { ListPredictInputs({JoinPath(tmp.path, "nope.png")}); }).find("no such file"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { ListPredictInputs({JoinPath(tmp.path, "sub/empty")}); }).find("no image or video file"),
            std::string::npos);
}

#if INSTRUCTFLIP_HAVE_OPENCV
TEST(ScoringModel, AVideoScoresTheMeanOfTheFramesIngestWouldSample) {
  TempDir tmp;
  const ScoringModel m = TinyScoringModel(tmp.path, ScoringStyleQuestion::kUniform);
  const std::string video = JoinPath(tmp.path, "clip.avi");
  cv::VideoWriter writer(video, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25, cv::Size(48, 40));
  ASSERT_TRUE(writer.isOpened());
  for (int k = 0; k < 20; ++k) {
    cv::Mat frame(40, 48, CV_8UC3);
    cv::randu(frame, cv::Scalar::all(0), cv::Scalar::all(255));
    writer.write(frame);
  }
  writer.release();
  const InputFrames frames = ReadInputFrames(video, m.config.vision.image_size);
  ASSERT_EQ(frames.frame_indices, (std::vector<int64_t>{6, 16}));  // ingest's VideoFrameIndices(20, 2, 6)
  std::vector<std::string> pngs;
  for (size_t k = 0; k < frames.frames.size(); ++k) {
    pngs.push_back(JoinPath(tmp.path, "frame" + std::to_string(k) + ".png"));
    WriteRgbPng(pngs.back(), frames.frames[k]);
  }
  BuiltModel built = LoadScoringModel(m, false);
  const std::vector<Prediction> from_video = Predict(built, m, {video}, {});
  const std::vector<Prediction> from_frames = Predict(built, m, pngs, {});
  ASSERT_EQ(from_video[0].frame_scores.size(), 2u);
  EXPECT_EQ(from_video[0].frame_indices, frames.frame_indices);
  EXPECT_DOUBLE_EQ(from_video[0].frame_scores[0], from_frames[0].spoof_probability);
  EXPECT_DOUBLE_EQ(from_video[0].frame_scores[1], from_frames[1].spoof_probability);
  EXPECT_DOUBLE_EQ(from_video[0].spoof_probability,
                   (from_frames[0].spoof_probability + from_frames[1].spoof_probability) / 2);
}
#endif

TEST(ScoringModel, TheHuggingFaceExportReadsBackThroughTheClipLoader) {
  TempDir tmp;
  const ScoringModel m = TinyScoringModel(tmp.path, ScoringStyleQuestion::kUniform);
  BuiltModel built = LoadScoringModel(m, false);
  const std::string hf = JoinPath(tmp.path, "hf");
  ExportHuggingFaceClipVision(*built.model, hf);
  const nlohmann::json config = nlohmann::json::parse(ReadFile(JoinPath(hf, "config.json")));
  EXPECT_EQ(config["architectures"], nlohmann::json::array({"CLIPVisionModel"}));
  EXPECT_EQ(config["model_type"], "clip_vision_model");
  EXPECT_EQ(config["hidden_size"], m.config.vision.width);
  EXPECT_EQ(config["intermediate_size"], 4 * m.config.vision.width);
  EXPECT_EQ(config["num_hidden_layers"], m.config.vision.layers);
  EXPECT_EQ(config["num_attention_heads"], m.config.vision.heads);
  EXPECT_EQ(config["image_size"], m.config.vision.image_size);
  EXPECT_EQ(config["patch_size"], m.config.vision.patch_size);
  EXPECT_EQ(config["hidden_act"], "quick_gelu");
  const auto file = SafetensorsFile::Open(JoinPath(hf, "model.safetensors"));
  EXPECT_EQ(file->metadata().at("format"), "pt");
  for (const auto& info : file->tensors()) EXPECT_EQ(info.name.rfind("vision_model.", 0), 0u) << info.name;
  // Another model, initialised differently, takes every vision tensor from the export.
  torch::manual_seed(99);
  BuiltModel other = BuildModel(m.config, {.language_model = false, .pretrained = false});
  const LoadReport report = LoadClipVision(*other.model, JoinPath(hf, "model.safetensors"));
  EXPECT_TRUE(report.missing.empty()) << report.Summary();
  EXPECT_TRUE(report.unexpected.empty()) << report.Summary();
  const auto ours = built.model->visual_encoder->named_parameters();
  for (const auto& item : other.model->visual_encoder->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), ours[item.key()])) << item.key();
  EXPECT_NE(ErrorOf([&] { ExportHuggingFaceClipVision(*built.model, hf); }).find("not an empty directory"),
            std::string::npos);
}

TEST(ScoringModel, ABundleRoundTripsAndRefusesToOverwrite) {
  TempDir tmp;
  ScoringModel m = TinyScoringModel(tmp.path, ScoringStyleQuestion::kEnsemble);
  m.threshold = 0.625;
  m.threshold_rule = "source validation EER";
  const std::string bundle = JoinPath(tmp.path, "bundle");
  ExportBundle(m, bundle);
  const ScoringModel back = FindScoringModel(bundle);
  EXPECT_EQ(back.threshold, 0.625);
  EXPECT_EQ(back.threshold_rule, "source validation EER");
  EXPECT_EQ(back.style_question, ScoringStyleQuestion::kEnsemble);
  EXPECT_EQ(back.seed, 2u);
  for (const char* name : {"model.safetensors", "language_model.safetensors"})
    EXPECT_EQ(SafetensorsFile::Open(JoinPath(bundle, name))->metadata().at("format"), "pt") << name;
  const auto main_file = SafetensorsFile::Open(JoinPath(bundle, "model.safetensors"));
  const auto language_file = SafetensorsFile::Open(JoinPath(bundle, "language_model.safetensors"));
  for (const auto& info : main_file->tensors()) EXPECT_NE(info.name.rfind("t5_model.", 0), 0u) << info.name;
  for (const auto& info : language_file->tensors()) EXPECT_EQ(info.name.rfind("t5_model.", 0), 0u) << info.name;
  EXPECT_FALSE(language_file->tensors().empty());
  // The bundle scores as the checkpoint it came from, with and without its T5.
  const std::string image = JoinPath(tmp.path, "x.png");
  WriteRgbPng(image, Texture(80, 80, 5));
  BuiltModel original = LoadScoringModel(m, false);
  BuiltModel lean = LoadScoringModel(back, false), whole = LoadScoringModel(back, true);
  const double expected = Predict(original, m, {image}, {})[0].spoof_probability;
  EXPECT_DOUBLE_EQ(Predict(lean, back, {image}, {})[0].spoof_probability, expected);
  EXPECT_NEAR(Predict(whole, back, {image}, {})[0].spoof_probability, expected, 1e-6);
  // Nothing is overwritten, and a model without a threshold is not exported.
  const std::string before = ReadFile(JoinPath(bundle, "bundle.json"));
  EXPECT_NE(ErrorOf([&] { ExportBundle(m, bundle); }).find("not an empty directory"), std::string::npos);
  EXPECT_EQ(ReadFile(JoinPath(bundle, "bundle.json")), before);
  m.threshold.reset();
  EXPECT_NE(ErrorOf([&] { ExportBundle(m, JoinPath(tmp.path, "b2")); }).find("no stored threshold"), std::string::npos);
  EXPECT_FALSE(fs::exists(JoinPath(tmp.path, "b2")));
  // A checkpoint without our configuration in its metadata is named as such.
  EXPECT_NE(ErrorOf([&] { FindScoringModel(m.weights); }).find("no training configuration"), std::string::npos);
}

// A LODO job's result.json is read field by field: its checkpoint is one of the
// job's own, its threshold a probability.
TEST(ScoringModel, ALodoJobsResultIsCheckedFieldByField) {
  TempDir tmp;
  const std::string job = JoinPath(tmp.path, "job");
  fs::create_directories(job);
  auto error_with = [&](const std::string& result) {
    WriteFileAtomic(JoinPath(job, "result.json"), result);
    return ErrorOf([&] { FindScoringModel(job); });
  };
  std::string e = error_with(R"({"checkpoint": "../../run/checkpoints/step-00000004", "threshold": 0.3})");
  EXPECT_NE(e.find("result.json: 'checkpoint' must name a directory in the job's checkpoints/, got '../../run/"),
            std::string::npos)
      << e;
  e = error_with(R"({"checkpoint": "step-00000004", "threshold": 7})");
  EXPECT_NE(e.find("result.json: 'threshold' must be in [0, 1.1], got 7"), std::string::npos) << e;
  e = error_with(R"({"checkpoint": "step-00000004", "threshold": "0.5"})");
  EXPECT_NE(e.find("result.json: 'threshold' is \"0.5\", not a number"), std::string::npos) << e;
  e = error_with(R"({"threshold": 0.5})");
  EXPECT_NE(e.find("result.json: lacks 'checkpoint'"), std::string::npos) << e;
}

// A model whose tokenizers are Hugging Face directories (configs/model/base.yaml's
// way): the bundle carries the files, scores as the original, and an output
// named with a trailing slash is written in place, nothing left beside it.
TEST(ScoringModel, ABundleCarriesTheTokenizerFilesOfModelDirectories) {
  TempDir tmp;
  fs::create_directories(JoinPath(tmp.path, "hub/bert"));
  fs::create_directories(JoinPath(tmp.path, "hub/t5"));
  std::string vocab;
  for (const std::string& token : BuildWordPieceVocab(AllInstructionTexts())) vocab += token + "\n";
  WriteFileAtomic(JoinPath(tmp.path, "hub/bert/vocab.txt"), vocab);
  WriteFileAtomic(JoinPath(tmp.path, "hub/t5/spiece.model"), TrainSentencePiece(AllInstructionTexts(), 200, 0));
  ScoringModel m = TinyScoringModel(tmp.path, ScoringStyleQuestion::kEnsemble);
  m.config.tokenizers.bert_vocab = JoinPath(tmp.path, "hub/bert");
  m.config.tokenizers.t5_spiece = JoinPath(tmp.path, "hub/t5");
  const std::string bundle = JoinPath(tmp.path, "out/bundle");
  ExportBundle(m, bundle + "/");
  EXPECT_EQ(ReadFile(JoinPath(bundle, "tokenizer/vocab.txt")), vocab);
  EXPECT_TRUE(fs::is_regular_file(JoinPath(bundle, "tokenizer/spiece.model")));
  std::vector<std::string> beside;
  for (const auto& entry : fs::directory_iterator(JoinPath(tmp.path, "out"))) beside.push_back(entry.path().filename());
  EXPECT_EQ(beside, std::vector<std::string>{"bundle"});
  const ScoringModel back = FindScoringModel(bundle);
  EXPECT_EQ(back.config.tokenizers.bert_vocab, JoinPath(bundle, "tokenizer/vocab.txt"));
  const std::string image = JoinPath(tmp.path, "x.png");
  WriteRgbPng(image, Texture(40, 50, 3));
  BuiltModel original = LoadScoringModel(m, false), exported = LoadScoringModel(back, false);
  EXPECT_DOUBLE_EQ(Predict(exported, back, {image}, {})[0].spoof_probability,
                   Predict(original, m, {image}, {})[0].spoof_probability);
  // A bundle.json field of the wrong type names the file.
  std::string manifest = ReadFile(JoinPath(bundle, "bundle.json"));
  manifest.replace(manifest.find("\"scoring_seed\": 2"), 17, "\"scoring_seed\": \"two\"");
  WriteFileAtomic(JoinPath(bundle, "bundle.json"), manifest);
  const std::string error = ErrorOf([&] { FindScoringModel(bundle); });
  EXPECT_NE(error.find("bundle.json: 'scoring_seed' is \"two\", not a number"), std::string::npos) << error;
  // A style-question rule this build does not know is named with the known ones.
  manifest.replace(manifest.find("\"scoring_seed\": \"two\""), 21, "\"scoring_seed\": 2");
  manifest.replace(manifest.find("\"style_question\": \"ensemble\""), 28, "\"style_question\": \"random\"");
  WriteFileAtomic(JoinPath(bundle, "bundle.json"), manifest);
  const std::string rule_error = ErrorOf([&] { FindScoringModel(bundle); });
  EXPECT_NE(rule_error.find("bundle.json: 'style_question' must be uniform, ensemble, illumination, environment or "
                            "camera_quality, got 'random'"),
            std::string::npos)
      << rule_error;
  // A stored threshold is a probability, or 1.1: the EER threshold of a model whose scores are all equal.
  manifest.replace(manifest.find("\"style_question\": \"random\""), 26, "\"style_question\": \"ensemble\"");
  manifest.replace(manifest.find("\"threshold\": 0.5"), 16, "\"threshold\": 1.5");
  WriteFileAtomic(JoinPath(bundle, "bundle.json"), manifest);
  const std::string threshold_error = ErrorOf([&] { FindScoringModel(bundle); });
  EXPECT_NE(threshold_error.find("bundle.json: 'threshold' must be in [0, 1.1], got 1.5"), std::string::npos)
      << threshold_error;
  manifest.replace(manifest.find("\"threshold\": 1.5"), 16, "\"threshold\": 1.1");
  WriteFileAtomic(JoinPath(bundle, "bundle.json"), manifest);
  EXPECT_EQ(FindScoringModel(bundle).threshold, 1.1);
}

TEST(ResolvedConfig, HoldsEveryKeyInForceWithShortestFloats) {
  const TrainConfig c = LoadTrainConfig(kSource + "/configs/train/synthetic_tiny.yaml", {"schedule.max_lr=0.1"});
  const YAML::Node r = YAML::Load(c.resolved_yaml);
  // Keys the file leaves to their defaults are written with the value in force.
  for (const char* key : {"clip_grad_norm", "accumulation", "seed"}) EXPECT_TRUE(r[key].IsDefined()) << key;
  EXPECT_EQ(r["data"]["validation_seed"].as<uint64_t>(), c.trainer.validation_seed);
  EXPECT_EQ(r["data"]["epoch_size"].as<int64_t>(), c.trainer.epoch_size);
  EXPECT_EQ(r["schedule"]["base_momentum"].as<double>(), c.trainer.schedule.base_momentum);
  EXPECT_EQ(r["optimizer"]["beta2"].as<double>(), c.trainer.optimizer.beta2);
  EXPECT_EQ(r["schedule"]["max_lr"].Scalar(), "0.1");
  EXPECT_EQ(r["optimizer"]["weight_decay"].Scalar(), "1e-07");
  EXPECT_EQ(r["model"]["qformer"]["layer_norm_eps"].Scalar(), "1e-07");
  // Read back, it resolves to itself.
  EXPECT_EQ(ParseResolvedTrainConfig(c.resolved_yaml, "saved").resolved_yaml, c.resolved_yaml);
  for (double v : {0.1, 1e-7, 2.0 / 3.0, 5e-6, 25.0, 0.005})
    EXPECT_EQ(YAML::Load(YAML::Dump(YamlNumber(v))).as<double>(), v) << v;
  EXPECT_EQ(YamlNumber(0.1).Scalar(), "0.1");
  EXPECT_EQ(YamlNumber(25).Scalar(), "25.0");
}

TEST(RunDirectoryClaim, AFailedLaunchLeavesNoDirectoryItCreated) {
  TempDir tmp;
  const std::string fresh = JoinPath(tmp.path, "fresh"), used = JoinPath(tmp.path, "used");
  EXPECT_THROW(
      {
        const auto claim = ClaimRunDirectory(JoinPath(tmp.path, "runs/a/fresh"), "--run-dir");
        EXPECT_TRUE(fs::is_directory(JoinPath(tmp.path, "runs/a/fresh")));
        throw Error("refused");
      },
      Error);
  EXPECT_FALSE(fs::exists(JoinPath(tmp.path, "runs")));  // the parents it made too
  fs::create_directories(used);
  WriteFileAtomic(JoinPath(used, "config.yaml"), "x: 1\n");
  EXPECT_THROW(
      {
        const auto claim = ClaimRunDirectory(used, "--run-dir");
        throw Error("refused");
      },
      Error);
  EXPECT_EQ(ReadFile(JoinPath(used, "config.yaml")), "x: 1\n");
  { const auto claim = ClaimRunDirectory(fresh, "--run-dir"); }  // a launch that went on keeps its directory
  EXPECT_TRUE(fs::is_directory(fresh));
}

}  // namespace
}  // namespace instructflip::launch
