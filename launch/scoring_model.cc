#include "launch/scoring_model.h"

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <tuple>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "dataio/augment.h"
#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "launch/model_config_yaml.h"
#include "launch/train_config_yaml.h"
#include "launch/version.h"
#include "model/safetensors.h"
#include "model/tokenizers.h"
#include "model/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/metrics.h"

namespace instructflip::launch {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBundleFormat = "instructflip-bundle";
constexpr int kBundleFormatVersion = 1;
constexpr const char* kLanguageModelPrefix = "t5_model.";

bool IsFile(const std::string& path) { return fs::is_regular_file(path); }

nlohmann::json ReadJson(const std::string& path) {
  try {
    return nlohmann::json::parse(ReadFile(path));
  } catch (const nlohmann::json::exception& e) {
    IF_FAIL(path, ": not valid JSON (", e.what(), ")");
  }
}

// A field of a JSON file a build of ours wrote (bundle.json, result.json): one
// missing or of another type is an Error naming the file and the field.
template <typename T>
T Field(const nlohmann::json& object, const char* key, const std::string& file) {
  IF_REQUIRE(object.is_object() && object.contains(key), file, ": lacks '", key, "'");
  try {
    return object.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    IF_FAIL(file, ": '", key, "' is ", object.at(key).dump(), ", not ",
            std::is_same_v<T, std::string> ? "a string" : "a number");
  }
}
template <typename T>
T FieldOr(const nlohmann::json& object, const char* key, T absent, const std::string& file) {
  return object.is_object() && object.contains(key) ? Field<T>(object, key, file) : absent;
}

// A stored decision threshold: a spoof probability, or above every one (an EER
// threshold of a model whose scores are all equal, trainer/metrics.h).
double ThresholdField(const nlohmann::json& object, const std::string& file) {
  const double threshold = Field<double>(object, "threshold", file);
  IF_REQUIRE(std::isfinite(threshold) && threshold >= 0 && threshold <= kThresholdAboveEveryScore, file,
             ": 'threshold' must be in [0, ", kThresholdAboveEveryScore, "], got ", threshold);
  return threshold;
}

// The scoring side of a checkpoint's own configuration (safetensors metadata "config").
ScoringModel FromCheckpointWeights(const std::string& weights, const std::string& description) {
  ScoringModel m;
  m.weights = weights;
  m.description = description;
  const std::unique_ptr<SafetensorsFile> file = SafetensorsFile::Open(weights);
  const auto config = file->metadata().find("config");
  IF_REQUIRE(config != file->metadata().end(), weights,
             ": has no training configuration in its metadata (not an instructflip checkpoint?); export a bundle "
             "from the checkpoint it came from");
  const TrainConfig train = ParseResolvedTrainConfig(config->second, weights + " (its configuration)");
  m.config = train.trainer.model;
  m.config.pretrained = {};
  m.style_question = train.eval_style_question;
  m.seed = train.trainer.seed;
  return m;
}

// A LODO job's result.json, if it selected `checkpoint_name`: its threshold.
void TakeJobThreshold(const std::string& job_dir, const std::string& checkpoint_name, ScoringModel* m) {
  const std::string result = JoinPath(job_dir, "result.json");  // LodoRunFiles::Result
  if (!IsFile(result)) return;
  const nlohmann::json r = ReadJson(result);
  if (FieldOr<std::string>(r, "checkpoint", "", result) != checkpoint_name || !r.contains("threshold")) return;
  m->threshold = ThresholdField(r, result);
  m->threshold_rule = FieldOr<std::string>(r, "threshold_mode", "the LODO job's threshold", result);
  m->description += ", selected by its LODO job (" + FieldOr<std::string>(r, "checkpoint_rule", "", result) + ")";
}

ScoringModel FromCheckpoint(const std::string& path) {
  const std::string weights = CheckpointStore::VerifiedModelWeights(path);
  const fs::path checkpoint = fs::path(weights).parent_path();
  ScoringModel m = FromCheckpointWeights(weights, "checkpoint " + checkpoint.string());
  if (IsFile((checkpoint / "COMPLETE").string())) {
    m.step = CheckpointStore::StepOf(checkpoint.string());
    // RUN/checkpoints/step-N: RUN may be a LODO job that selected this step.
    TakeJobThreshold(checkpoint.parent_path().parent_path().string(), checkpoint.filename().string(), &m);
  }
  return m;
}

ScoringModel FromLodoJob(const std::string& job_dir) {
  const std::string result = JoinPath(job_dir, "result.json");
  const nlohmann::json r = ReadJson(result);
  const std::string name = Field<std::string>(r, "checkpoint", result);
  IF_REQUIRE(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..", result,
             ": 'checkpoint' must name a directory in the job's checkpoints/, got '", name, "'");
  ThresholdField(r, result);  // checked here; TakeJobThreshold takes it
  const std::string checkpoint = JoinPath(JoinPath(job_dir, "checkpoints"), name);
  IF_REQUIRE(fs::is_directory(checkpoint), result, ": the selected checkpoint ", checkpoint,
             " is not there (pruned by checkpoint.keep_last?); score a checkpoint that is, with --threshold");
  ScoringModel m = FromCheckpoint(checkpoint);
  m.description =
      "LODO job " + job_dir + ", " + name + " (" + FieldOr<std::string>(r, "checkpoint_rule", "", result) + ")";
  IF_REQUIRE(m.threshold.has_value(), result, ": does not name ", name, " with a threshold");
  return m;
}

ScoringModel FromBundle(const std::string& dir) {
  const std::string manifest = JoinPath(dir, "bundle.json");
  const nlohmann::json b = ReadJson(manifest);
  IF_REQUIRE(FieldOr<std::string>(b, "format", "", manifest) == kBundleFormat, manifest, ": 'format' is not ",
             kBundleFormat);
  const int version = FieldOr<int>(b, "format_version", 0, manifest);
  IF_REQUIRE(version == kBundleFormatVersion, manifest, ": format_version ", version, " is not ",
             kBundleFormatVersion, ", the one this build reads (export the bundle again with this build)");
  ScoringModel m;
  m.description = "bundle " + dir + " (" + FieldOr<std::string>(b, "source", "", manifest) + ")";
  m.config = LoadModelConfig(JoinPath(dir, "model.yaml"));  // tokenizer/ files: relative to the bundle
  m.weights = JoinPath(dir, "model.safetensors");
  if (b.contains("language_model_weights"))
    m.language_model_weights = JoinPath(dir, Field<std::string>(b, "language_model_weights", manifest));
  m.style_question = kScoringStyleQuestions.Parse(Field<std::string>(b, "style_question", manifest),
                                                  manifest + ": 'style_question'");
  m.seed = Field<uint64_t>(b, "scoring_seed", manifest);
  m.threshold = ThresholdField(b, manifest);
  m.threshold_rule = FieldOr<std::string>(b, "threshold_rule", "", manifest);
  m.step = FieldOr<int64_t>(b, "step", -1, manifest);
  m.instructflip_version = FieldOr<std::string>(b, "instructflip", "", manifest);
  return m;
}

// Writes a directory whole or not at all: `write` fills a fresh temporary
// sibling of `out_dir` (this process's own), which then replaces the absent or
// empty `out_dir`; on failure the temporary is removed.
void WriteDirectoryAtomically(const std::string& out_dir, const std::function<void(const fs::path&)>& write) {
  fs::path target = fs::absolute(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "my-model/"
  fs::create_directories(target.parent_path());
  std::string pattern = (target.parent_path() / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  IF_REQUIRE(::mkdtemp(pattern.data()) != nullptr, "export: cannot create a temporary directory beside ", target);
  const fs::path temp = pattern;
  try {
    write(temp);
    if (fs::exists(target)) fs::remove(target);  // empty (checked before)
    RenameDurable(temp.string(), target.string());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw;
  }
}

void WriteWeights(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  SaveSafetensors(path, tensors, {{"format", "pt"}, {"instructflip", VersionString()}});
}

}  // namespace

void RequireAbsentOrEmpty(const std::string& dir, const char* flag) {
  IF_REQUIRE(!PathExists(dir) || (fs::is_directory(dir) && fs::is_empty(dir)), "export: ", flag, " ", dir,
             " exists and is not an empty directory (nothing is overwritten)");
}

ScoringModel FindScoringModel(const std::string& path) {
  IF_REQUIRE(PathExists(path), "--model ", path, ": no such file or directory");
  try {
    if (fs::is_directory(path)) {
      if (IsFile(JoinPath(path, "bundle.json"))) return FromBundle(path);
      if (IsFile(JoinPath(path, "result.json"))) return FromLodoJob(path);
      IF_REQUIRE(IsFile(JoinPath(path, "model.safetensors")), "--model ", path,
                 ": neither a bundle (bundle.json), a finished LODO job (result.json) nor a checkpoint "
                 "(model.safetensors)");
    }
    return FromCheckpoint(path);
  } catch (const nlohmann::json::exception& e) {  // a result.json field missing or of another type
    IF_FAIL("--model ", path, ": ", e.what());
  }
}

BuiltModel LoadScoringModel(const ScoringModel& scoring, bool language_model) {
  BuiltModel built = BuildModel(scoring.config, {.language_model = language_model, .pretrained = false});
  std::vector<std::string> files = {scoring.weights};
  if (language_model && !scoring.language_model_weights.empty()) files.push_back(scoring.language_model_weights);
  LoadModelWeights(*built.model, files, language_model ? "" : kLanguageModelPrefix);
  built.model->eval();
  return built;
}

void ExportBundle(const ScoringModel& scoring, const std::string& out_dir) {
  IF_REQUIRE(scoring.threshold.has_value(), "export: ", scoring.description,
             " has no stored threshold (only a LODO job's selected checkpoint has one); give --threshold T and say "
             "how it was chosen");
  RequireAbsentOrEmpty(out_dir, "--out");
  BuiltModel built = LoadScoringModel(scoring, /*language_model=*/true);
  WriteDirectoryAtomically(out_dir, [&](const fs::path& dir) {
    // 1. Weights: the classifier path, and the frozen T5 apart.
    std::vector<std::pair<std::string, torch::Tensor>> main, language;
    for (const auto& item : built.model->named_parameters(true))
      (item.key().rfind(kLanguageModelPrefix, 0) == 0 ? language : main).push_back({item.key(), item.value()});
    for (const auto& item : built.model->named_buffers(true))
      (item.key().rfind(kLanguageModelPrefix, 0) == 0 ? language : main).push_back({item.key(), item.value()});
    WriteWeights((dir / "model.safetensors").string(), main);
    if (!language.empty()) WriteWeights((dir / "language_model.safetensors").string(), language);

    // 2. The model configuration, its tokenizer files beside it.
    ModelConfig config = built.config;
    config.pretrained = {};
    for (auto [path, name, field] : {std::tuple{&config.tokenizers.bert_vocab, "vocab.txt", "tokenizers.bert_vocab"},
                                     std::tuple{&config.tokenizers.t5_spiece, "spiece.model", "tokenizers.t5_spiece"}}) {
      if (*path == kInstructionTokenizers) continue;
      fs::create_directories(dir / "tokenizer");
      fs::copy_file(TokenizerFile(*path, name, field), dir / "tokenizer" / name);
      *path = std::string("tokenizer/") + name;
    }
    YAML::Emitter yaml;
    yaml << ModelConfigToYaml(config);
    WriteFileAtomic((dir / "model.yaml").string(), std::string(yaml.c_str()) + "\n");

    // 3. What scoring needs besides the weights, and where it all came from.
    const NormalizeOptions normalize;
    nlohmann::json b{{"format", kBundleFormat},
                     {"format_version", kBundleFormatVersion},
                     {"instructflip", VersionString()},
                     {"source", scoring.description},
                     {"step", scoring.step},
                     {"model", {{"name", config.name}, {"variant", kVariants.Name(config.variant)}}},
                     {"threshold", *scoring.threshold},
                     {"threshold_rule", scoring.threshold_rule},
                     {"decision", "spoof when the spoof probability >= threshold"},
                     {"style_question", kScoringStyleQuestions.Name(scoring.style_question)},
                     {"scoring_seed", scoring.seed},
                     {"image", {{"size", config.vision.image_size},
                                {"resize", "whole image to size x size (INTER_AREA shrinking, INTER_LINEAR enlarging)"},
                                {"mean", normalize.mean},
                                {"std", normalize.std}}}};
    if (!language.empty()) b["language_model_weights"] = "language_model.safetensors";
    WriteFileAtomic((dir / "bundle.json").string(), b.dump(2) + "\n");
  });
}

void ExportHuggingFaceClipVision(InstructFlipImpl& model, const std::string& out_dir) {
  RequireAbsentOrEmpty(out_dir, "--hf");
  // Our vision tower keeps Hugging Face's names under "visual_encoder." (model/weights.cc reads them back).
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model.visual_encoder->named_parameters(true)) {
    const std::string& name = item.key();
    IF_REQUIRE(name.rfind("embeddings.", 0) == 0 || name.rfind("encoder.", 0) == 0 ||
                   name.rfind("pre_layrnorm.", 0) == 0 || name.rfind("post_layernorm.", 0) == 0,
               "export --hf: vision parameter '", name, "' has no CLIPVisionModel name");
    tensors.push_back({"vision_model." + name, item.value()});
  }
  const VisionConfig& v = model.config().vision;
  const nlohmann::json config{{"architectures", {"CLIPVisionModel"}},
                              {"model_type", "clip_vision_model"},
                              {"hidden_size", v.width},
                              {"intermediate_size", 4 * v.width},
                              {"num_hidden_layers", v.layers},
                              {"num_attention_heads", v.heads},
                              {"num_channels", 3},
                              {"image_size", v.image_size},
                              {"patch_size", v.patch_size},
                              {"hidden_act", "quick_gelu"},
                              {"layer_norm_eps", v.layer_norm_eps},
                              {"attention_dropout", 0.0},
                              {"dropout", 0.0},
                              {"initializer_range", 0.02},
                              {"initializer_factor", 1.0},
                              {"projection_dim", 512},
                              {"torch_dtype", "float32"}};
  WriteDirectoryAtomically(out_dir, [&](const fs::path& dir) {
    WriteWeights((dir / "model.safetensors").string(), tensors);
    WriteFileAtomic((dir / "config.json").string(), config.dump(2) + "\n");
  });
}

}  // namespace instructflip::launch
