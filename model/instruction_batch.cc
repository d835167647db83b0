#include "model/instruction_batch.h"

#include <algorithm>

#include "dataio/base/check.h"
#include "dataio/base/rng.h"

namespace instructflip {

int64_t StyleClass(StyleQuestion question, int label, int illumination, int environment, int camera_quality) {
  constexpr int64_t kNoIllumination = 0, kNoEnvironment = 5;
  const bool live = label == 0;
  switch (question) {
    case StyleQuestion::kIllumination: return live ? kNoIllumination : illumination < 0 ? -100 : 1 + illumination;
    case StyleQuestion::kEnvironment: return live ? kNoEnvironment : environment < 0 ? -100 : 6 + environment;
    case StyleQuestion::kCameraQuality: return camera_quality < 0 ? -100 : 8 + camera_quality;
  }
  return -100;
}

InstructionBatcher::InstructionBatcher(std::shared_ptr<const WordPieceTokenizer> bert,
                                       std::shared_ptr<const T5Tokenizer> t5, const ModelConfig& config,
                                       uint64_t seed)
    : bert_(std::move(bert)),
      t5_(std::move(t5)),
      config_(config),
      seed_(seed),
      bert_cache_([this](const std::string& text) { return bert_->Encode(text, config_.qformer.max_text_length); }),
      t5_question_cache_([this](const std::string& text) {
        // Truncated from the left, keeping </s> (the reference's truncation_side="left").
        std::vector<int64_t> ids = t5_->Encode(text);
        const size_t limit = static_cast<size_t>(config_.t5.max_input_length);
        if (ids.size() > limit) ids.erase(ids.begin(), ids.end() - limit);
        return ids;
      }),
      t5_answer_cache_([this](const std::string& text) {
        std::vector<int64_t> ids = t5_->Encode(text);  // truncated from the right, as the reference
        ids.resize(std::min(ids.size(), static_cast<size_t>(config_.t5.max_output_length)));
        return ids;
      }) {
  IF_CHECK(bert_ != nullptr && t5_ != nullptr);
}

StyleQuestion InstructionBatcher::TrainingQuestion(StyleQuestionRule rule, int64_t label, int64_t key,
                                                   int pool) const {
  if (!config_.asks_questions()) return UniformQuestion(key);
  return PickStyleQuestion(rule, static_cast<int>(label), HashKeys({seed_, static_cast<uint64_t>(key)}), pool);
}

StyleQuestion InstructionBatcher::UniformQuestion(int64_t key) const {
  return UniformStyleQuestion(HashKeys({seed_, static_cast<uint64_t>(key)}));
}

TokenBatch InstructionBatcher::Pad(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad) const {
  size_t longest = 1;
  for (const auto* row : rows) longest = std::max(longest, row->size());
  const int64_t B = static_cast<int64_t>(rows.size()), T = static_cast<int64_t>(longest);
  TokenBatch out{torch::full({B, T}, pad, torch::kLong), torch::zeros({B, T}, torch::kLong)};
  auto ids = out.ids.accessor<int64_t, 2>();
  auto keep = out.keep.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < rows[b]->size(); ++t) {
      ids[b][t] = (*rows[b])[t];
      keep[b][t] = 1;
    }
  return out;
}

InstructFlipInputs InstructionBatcher::Questions(const std::vector<StyleQuestion>& style) {
  const bool prompts = config_.asks_questions();
  const std::string content = prompts ? ContentInstruction(0).question : "";  // one text for every sample
  std::vector<std::string> style_texts;
  for (StyleQuestion q : style) style_texts.push_back(prompts ? StyleInstruction(q, -1, -1, -1).question : "");
  auto tokens = [&](TokenCache& cache, int64_t pad, bool content_question) {
    std::vector<const std::vector<int64_t>*> rows;
    for (const std::string& text : style_texts) rows.push_back(&cache.Get(content_question ? content : text));
    return Pad(rows, pad);
  };
  InstructFlipInputs inputs;
  inputs.content_question_qformer = tokens(bert_cache_, bert_->pad_id(), true);
  inputs.style_question_qformer = tokens(bert_cache_, bert_->pad_id(), false);
  inputs.content_question_t5 = tokens(t5_question_cache_, t5_->pad_id(), true);
  inputs.style_question_t5 = tokens(t5_question_cache_, t5_->pad_id(), false);
  return inputs;
}

InstructFlipTargets InstructionBatcher::Targets(const SampleTexts& s, const std::vector<StyleQuestion>& style) {
  const int64_t B = s.label.size(0);
  IF_REQUIRE(static_cast<int64_t>(style.size()) == B, "Targets: ", style.size(), " style questions for ", B,
             " samples");
  auto get = [](const torch::Tensor& t, int64_t i) { return t[i].item<int64_t>(); };
  std::vector<Instruction> content(B), style_answers(B);
  std::vector<int64_t> content_class(B), style_class(B);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t spoof_type = get(s.spoof_type, i);
    const int illumination = static_cast<int>(get(s.illumination, i));
    const int environment = static_cast<int>(get(s.environment, i));
    const int camera = static_cast<int>(get(s.camera_quality, i));
    content[i] = ContentInstruction(static_cast<int>(spoof_type));
    style_answers[i] = StyleInstruction(style[i], illumination, environment, camera);
    content_class[i] = spoof_type >= 0 ? spoof_type : -100;  // unknown: no class target
    style_class[i] = StyleClass(style[i], static_cast<int>(get(s.label, i)), illumination, environment, camera);
  }
  auto answers = [&](const std::vector<Instruction>& texts) {
    std::vector<const std::vector<int64_t>*> rows;
    for (const Instruction& t : texts) rows.push_back(&t5_answer_cache_.Get(t.answer));
    TokenBatch padded = Pad(rows, 0);
    torch::Tensor labels = padded.ids.masked_fill(padded.keep.eq(0), -100);
    for (int64_t i = 0; i < B; ++i)
      if (!texts[i].answer_known) labels[i].fill_(-100);
    return labels;
  };
  InstructFlipTargets targets;
  targets.label = s.label;
  targets.content_answer_t5 = answers(content);
  targets.style_answer_t5 = answers(style_answers);
  targets.content_class = torch::tensor(content_class, torch::kLong);
  targets.style_class = torch::tensor(style_class, torch::kLong);
  return targets;
}

InstructFlipExample InstructionBatcher::TrainingExample(const SampleTexts& s, StyleQuestionRule rule, int pool) {
  std::vector<StyleQuestion> style;
  for (int64_t i = 0; i < s.label.size(0); ++i)
    style.push_back(TrainingQuestion(rule, s.label[i].item<int64_t>(), s.keys[i].item<int64_t>(), pool));
  return {Questions(style), Targets(s, style)};
}

}  // namespace instructflip
