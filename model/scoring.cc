#include "model/scoring.h"

#include "dataio/base/check.h"

namespace instructflip {

std::vector<ScoringPass> MakeScoringInputs(const UnlabeledBatch& batch, ScoringStyleQuestion rule,
                                           InstructionBatcher& batcher) {
  IF_REQUIRE(batch.images.defined() && batch.keys.defined() && batch.images.size(0) == batch.keys.size(0),
             "scoring needs one key per image");
  const int64_t B = batch.keys.size(0);
  auto fixed = [B](StyleQuestion q) { return std::vector<StyleQuestion>(B, q); };
  std::vector<std::vector<StyleQuestion>> questions;
  switch (rule) {
    case ScoringStyleQuestion::kUniform: {
      std::vector<StyleQuestion> drawn;
      const torch::Tensor keys = batch.keys.to(torch::kCPU, torch::kLong).contiguous();
      for (int64_t i = 0; i < B; ++i) drawn.push_back(batcher.UniformQuestion(keys.data_ptr<int64_t>()[i]));
      questions.push_back(std::move(drawn));
      break;
    }
    case ScoringStyleQuestion::kIllumination: questions.push_back(fixed(StyleQuestion::kIllumination)); break;
    case ScoringStyleQuestion::kEnvironment: questions.push_back(fixed(StyleQuestion::kEnvironment)); break;
    case ScoringStyleQuestion::kCameraQuality: questions.push_back(fixed(StyleQuestion::kCameraQuality)); break;
    case ScoringStyleQuestion::kEnsemble:
      for (StyleQuestion q : {StyleQuestion::kIllumination, StyleQuestion::kEnvironment, StyleQuestion::kCameraQuality})
        questions.push_back(fixed(q));
      break;
  }
  std::vector<ScoringPass> passes;
  for (std::vector<StyleQuestion>& style : questions) {
    ScoringPass pass{std::move(style), {}};
    pass.inputs = batcher.Questions(pass.style);
    pass.inputs.images = batch.images;
    passes.push_back(std::move(pass));
  }
  return passes;
}

ScoredBatch ScoreBatch(InstructFlipImpl& model, const UnlabeledBatch& batch, ScoringStyleQuestion rule,
                       InstructionBatcher& batcher, const torch::Device& device) {
  // The images go to the device once, whatever the number of passes.
  const UnlabeledBatch on_device{batch.images.to(device, /*non_blocking=*/true), batch.keys};
  std::vector<ScoringPass> passes = MakeScoringInputs(on_device, rule, batcher);
  ScoredBatch scored;
  for (size_t k = 0; k < passes.size(); ++k) {
    passes[k].inputs = ToDevice(passes[k].inputs, device);
    InstructFlipOutputs out = model.forward(passes[k].inputs);
    scored.spoof_score = k == 0 ? out.spoof_score : scored.spoof_score + out.spoof_score;
    if (k == 0) scored.first_outputs = std::move(out);
  }
  if (passes.size() > 1) scored.spoof_score = scored.spoof_score / static_cast<double>(passes.size());
  scored.first_pass = std::move(passes.front());
  return scored;
}

Answers AnswerQuestions(InstructFlipImpl& model, const ScoredBatch& scored, const std::vector<int64_t>& rows,
                        const T5Tokenizer& t5) {
  const torch::Tensor index = torch::tensor(rows, torch::kLong);
  auto answer = [&](const torch::Tensor& queries, const TokenBatch& question) {
    std::vector<std::string> texts(rows.size());
    if (!queries.defined() || !model.config().has_llm() || model.t5_model.is_empty() || rows.empty()) return texts;
    const torch::Tensor at = index.to(queries.device());
    const TokenBatch selected{question.ids.index_select(0, at), question.keep.index_select(0, at)};
    const torch::Tensor ids = model.GenerateAnswers(queries.index_select(0, at), selected, t5.eos_id()).cpu();
    for (size_t r = 0; r < rows.size(); ++r) {
      const torch::Tensor row = ids[r].contiguous();
      texts[r] = t5.Decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
    }
    return texts;
  };
  const InstructFlipInputs& in = scored.first_pass.inputs;
  return {answer(scored.first_outputs.content_queries, in.content_question_t5),
          answer(scored.first_outputs.style_queries, in.style_question_t5)};
}

}  // namespace instructflip
