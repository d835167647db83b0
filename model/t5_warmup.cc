#include "model/t5_warmup.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/base/progress.h"
#include "model/instructions.h"
#include "model/weights.h"

namespace instructflip {

T5WarmupResult WarmUpT5(T5Model& t5, const ModelConfig& config, const T5Tokenizer& tokenizer) {
  const T5WarmupConfig& w = config.t5_warmup;
  IF_REQUIRE(w.steps > 0 && w.lr > 0, "t5_warmup: steps and lr must be > 0, got ", w.steps, " and ", w.lr);
  // Every (question, option) pair once; the style questions' other attributes
  // do not change the asked question's answer.
  std::vector<Instruction> pairs;
  for (int k = 0; k < 11; ++k) pairs.push_back(ContentInstruction(k));
  for (int k = 0; k < 4; ++k) pairs.push_back(StyleInstruction(StyleQuestion::kIllumination, k, 0, 0));
  for (int k = 0; k < 2; ++k) pairs.push_back(StyleInstruction(StyleQuestion::kEnvironment, 0, k, 0));
  for (int k = 0; k < 3; ++k) pairs.push_back(StyleInstruction(StyleQuestion::kCameraQuality, 0, 0, k));
  const int64_t N = static_cast<int64_t>(pairs.size());
  // Tokenised as InstructionBatcher does: questions truncated from the left, answers from the right.
  std::vector<std::vector<int64_t>> questions, answers;
  size_t question_length = 1, answer_length = 1;
  for (const Instruction& p : pairs) {
    std::vector<int64_t> q = tokenizer.Encode(p.question), a = tokenizer.Encode(p.answer);
    const size_t max_in = static_cast<size_t>(config.t5.max_input_length);
    if (q.size() > max_in) q.erase(q.begin(), q.end() - static_cast<int64_t>(max_in));
    a.resize(std::min(a.size(), static_cast<size_t>(config.t5.max_output_length)));
    question_length = std::max(question_length, q.size());
    answer_length = std::max(answer_length, a.size());
    questions.push_back(std::move(q));
    answers.push_back(std::move(a));
  }
  torch::Tensor question_ids = torch::zeros({N, static_cast<int64_t>(question_length)}, torch::kLong);
  torch::Tensor question_keep = torch::zeros_like(question_ids);
  torch::Tensor labels = torch::full({N, static_cast<int64_t>(answer_length)}, -100, torch::kLong);
  for (int64_t i = 0; i < N; ++i) {
    for (size_t t = 0; t < questions[i].size(); ++t) {
      question_ids[i][t] = questions[i][t];
      question_keep[i][t] = 1;
    }
    for (size_t t = 0; t < answers[i].size(); ++t) labels[i][t] = answers[i][t];
  }
  // On the T5's device (a GPU rank warms up its own copy).
  const torch::Device device = t5->shared->weight.device();
  question_ids = question_ids.to(device);
  question_keep = question_keep.to(device);
  labels = labels.to(device);
  const int64_t Q = config.qformer.num_queries;
  torch::Tensor prompts;
  {
    // Own seed: the warm-up gives the same T5 on every rank and in every
    // process, whatever was drawn from the global generator before.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(w.seed);
    prompts = torch::randn({N, Q, config.t5.d_model}, generator, torch::TensorOptions()).to(device).requires_grad_(true);
  }
  // The stand-in for pretraining teaches the T5's own weights, not its LoRA adapters.
  std::vector<torch::Tensor> params = {prompts};
  for (auto& item : t5->named_parameters()) {
    if (IsLoraParameter(item.key())) continue;
    item.value().set_requires_grad(true);
    params.push_back(item.value());
  }
  t5->train();
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(w.lr));
  const torch::Tensor keep = torch::cat({torch::ones({N, Q}, question_keep.options()), question_keep}, 1);
  T5WarmupResult result;
  // A line every 10 s: a real-size warm-up runs for minutes.
  Progress progress("T5 warm-up", "steps", w.steps, {[](const ProgressUpdate& u) { LOG(INFO) << ProgressText(u); }});
  for (; result.steps < w.steps; ++result.steps, progress.Advance()) {
    optimizer.zero_grad();
    const torch::Tensor inputs = torch::cat({prompts, t5->shared(question_ids)}, 1);
    const torch::Tensor loss = t5->LanguageModelLoss(t5->Encode(inputs, keep), keep, labels);
    result.loss = loss.item<double>();
    if (result.loss < w.target_loss) break;
    loss.backward();
    optimizer.step();
  }
  progress.Finish();
  for (auto& p : t5->parameters()) p.mutable_grad() = torch::Tensor();
  FreezeT5BaseWeights(*t5);
  t5->eval();
  return result;
}

namespace {

// 64-bit FNV-1a: a stable content hash for cache file names (std::hash and
// absl::Hash may differ between builds or runs; a cryptographic hash is more
// than a cache key needs, and none is among our dependencies).
class ContentHash {
 public:
  void Add(const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) hash_ = (hash_ ^ p[i]) * 0x100000001b3ull;
  }
  void Add(const std::string& text) {
    Add(text.data(), text.size());
    Add("\0", 1);
  }
  template <typename T>
  void AddValue(T value) {
    Add(&value, sizeof value);
  }
  std::string Hex() const {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash_));
    return out;
  }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

// Everything the warm-up's result depends on.
std::string WarmupKey(T5Model& t5, const ModelConfig& config, const T5Tokenizer& tokenizer) {
  ContentHash h;
  h.Add("t5-warmup v1");
  const T5WarmupConfig& w = config.t5_warmup;
  h.AddValue(w.steps);
  h.AddValue(w.lr);
  h.AddValue(w.target_loss);
  h.AddValue(w.seed);
  h.AddValue(config.t5.max_input_length);
  h.AddValue(config.t5.max_output_length);
  h.AddValue(config.qformer.num_queries);
  for (const std::string& text : AllInstructionTexts())
    for (int64_t id : tokenizer.Encode(text)) h.AddValue(id);
  for (const auto& item : t5->named_parameters()) {  // the initial weights, architecture included
    h.Add(item.key());
    const torch::Tensor p = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    for (int64_t d : p.sizes()) h.AddValue(d);
    h.Add(p.data_ptr(), static_cast<size_t>(p.numel()) * sizeof(float));
  }
  return h.Hex();
}

}  // namespace

T5WarmupResult WarmUpT5Cached(T5Model& t5, const ModelConfig& config, const T5Tokenizer& tokenizer,
                              const std::string& cache_dir, bool* from_cache) {
  if (from_cache != nullptr) *from_cache = false;
  if (cache_dir.empty()) return WarmUpT5(t5, config, tokenizer);
  const std::string stem = JoinPath(cache_dir, "t5-warmup-" + WarmupKey(t5, config, tokenizer));
  const std::string weights = stem + ".safetensors", summary = stem + ".json";
  if (PathExists(weights) && PathExists(summary)) {
    LoadModelWeights(*t5, weights);
    FreezeT5BaseWeights(*t5);
    t5->eval();
    const nlohmann::json j = nlohmann::json::parse(ReadFile(summary));
    if (from_cache != nullptr) *from_cache = true;
    return {j.at("loss").get<double>(), j.at("steps").get<int>()};
  }
  const T5WarmupResult result = WarmUpT5(t5, config, tokenizer);
  std::filesystem::create_directories(cache_dir);
  // The summary first: the weights file's presence marks a complete entry.
  WriteFileAtomic(summary, nlohmann::json{{"loss", result.loss}, {"steps", result.steps}}.dump() + "\n");
  const std::string temporary = weights + ".tmp." + std::to_string(::getpid());
  SaveModelWeights(*t5, temporary);
  std::filesystem::rename(temporary, weights);
  return result;
}

}  // namespace instructflip
