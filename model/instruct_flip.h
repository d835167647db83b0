// The unified InstructFLIP model (arXiv 2507.12060) and its training losses.
//
//   images -> CLIP vision: content (B, 1+P, W), style statistics (B, 2L, W)
//   content Q-Former(content question, content) -> Qc (B, 32, W)
//   style   Q-Former(style question,   style)   -> Qs (B, 32, W)
//   frozen FLAN-T5: [t5_proj(Q); T5 embeddings of the question] -> answer (LM losses)
//   fusion(content, [Qc; Qs]) -> token 0: classifier (2-way, L2-normalised weights)
//                             -> tokens 1..P on the patch grid: cue generator (3 channels)
//   total = 0.4 content LM + 0.4 style LM + 0.15 CE + 0.05 SmoothL1(cue, 0 live / 1 spoof)
//
// Variants (the reference's ablations) drop branches: see ModelConfig::variant
// and forward(). Submodule names follow the reference where it has them
// ("visual_encoder", "content_Qformer", "t5_proj", "fusion", "cls_layer",
// "cue_generator"); inside, the Hugging Face layouts of CLIP, BERT and T5.
#pragma once

#include <optional>

#include "dataio/base/torch_compat.h"
#include "model/clip_vision.h"
#include "model/fusion.h"
#include "model/model_config.h"
#include "model/qformer.h"
#include "model/t5.h"

namespace instructflip {

struct TokenBatch {
  torch::Tensor ids;   // (B, T) int64
  torch::Tensor keep;  // (B, T) int64, 1 token / 0 padding
};

// What the model reads. Nothing here may be derived from a sample's label or
// attributes: scoring (model/scoring.h) fills these without ever seeing them,
// and forward() without targets reads nothing else.
struct InstructFlipInputs {
  torch::Tensor images;                  // (B, 3, H, W) normalised
  TokenBatch content_question_qformer;   // WordPiece [CLS] question [SEP]
  TokenBatch style_question_qformer;
  TokenBatch content_question_t5;        // sentencepiece question </s>
  TokenBatch style_question_t5;
  // Training only, optional: standard normal cue noise per sample, keyed by
  // sample so a global batch split over any ranks gets the same noise. It is
  // applied to spoof samples only, which forward() learns from the targets.
  torch::Tensor cue_noise;               // (B, P, W)
  // Training only, optional: two SimCLR views of each image (2, B, 3, H, W)
  // for the SSL branch (loss.ssl > 0; dataio/ssl_views.h).
  torch::Tensor ssl_views;
};

// What training compares the outputs with: everything derived from the label
// and the annotated attributes.
struct InstructFlipTargets {
  torch::Tensor label;                   // (B,) int64, 0 live / 1 spoof
  torch::Tensor content_answer_t5;       // (B, T) answer </s>, -100 padding; rows of -100 = unknown answer
  torch::Tensor style_answer_t5;
  torch::Tensor content_class;           // (B,) int64 for no_llm / mc heads, -100 unknown
  torch::Tensor style_class;
  // Labelled answer tokens in the global batch: the LM losses become token
  // sums / these, so results do not depend on how a global batch is split over
  // ranks and micro-steps (0: per-batch means).
  double content_lm_tokens = 0;
  double style_lm_tokens = 0;
};

// A training example: what the model reads and what it is scored against.
struct InstructFlipExample {
  InstructFlipInputs inputs;
  InstructFlipTargets targets;
};

// The same inputs / targets with every tensor on `device` (asynchronous copies
// where the source is pinned, e.g. the loader's images).
InstructFlipInputs ToDevice(const InstructFlipInputs& inputs, const torch::Device& device);
InstructFlipTargets ToDevice(const InstructFlipTargets& targets, const torch::Device& device);
InstructFlipExample ToDevice(const InstructFlipExample& example, const torch::Device& device);

struct InstructFlipLosses {
  torch::Tensor total;
  torch::Tensor content_lm, style_lm, classification, cue;  // undefined where the variant has none
  torch::Tensor ssl;  // InfoNCE of the two views; undefined without loss.ssl or views
};

struct InstructFlipOutputs {
  torch::Tensor logits;           // (B, 2)
  torch::Tensor spoof_score;      // (B,) softmax(logits)[:, 1] = P(spoof)
  torch::Tensor cue_map;          // (B, 3, h, w), undefined without a cue generator
  torch::Tensor content_queries;  // (B, Q, W), undefined without the content branch
  torch::Tensor style_queries;    // (B, Q, W), undefined without the style branch
  std::optional<InstructFlipLosses> losses;
};

class InstructFlipImpl : public torch::nn::Module {
 public:
  // `with_language_model` false leaves the frozen T5 out (t5_model stays
  // empty): scoring needs only vision, Q-Formers, fusion and the classifier,
  // and a FLAN-T5 is most of the model's memory (predict without --explain).
  explicit InstructFlipImpl(const ModelConfig& config, bool with_language_model = true);

  // Scores: reads the inputs only (no losses, no cue noise).
  InstructFlipOutputs forward(const InstructFlipInputs& inputs);
  // Scores and losses against `targets`. In training mode spoof samples'
  // patch tokens get Gaussian cue noise.
  InstructFlipOutputs forward(const InstructFlipInputs& inputs, const InstructFlipTargets& targets);

  // Greedy answers (B, <= max_new_tokens) to the questions given the query states.
  torch::Tensor GenerateAnswers(const torch::Tensor& query_states, const TokenBatch& question_t5,
                                int64_t eos_id);

  // The frozen LLM: parameters without gradients, module always in eval mode.
  void train(bool on = true) override;
  const ModelConfig& config() const { return config_; }
  // Parameters that the optimizer updates (everything but the frozen T5).
  std::vector<torch::Tensor> trainable_parameters();

  CLIPVision visual_encoder{nullptr};
  QFormer content_Qformer{nullptr}, style_Qformer{nullptr};
  torch::nn::Linear t5_proj{nullptr};
  T5Model t5_model{nullptr};
  FusionModule fusion{nullptr};
  NormalizedClassifier cls_layer{nullptr};
  CueGenerator cue_generator{nullptr};
  // The reference's ssl_branch: an MLP on the class token of each SSL view
  // (present when loss.ssl > 0).
  torch::nn::Sequential ssl_branch{nullptr};
  NormalizedClassifier content_head{nullptr}, style_head{nullptr};  // no_llm and mc variants

 private:
  // The one forward pass: losses (and cue noise) only with targets.
  InstructFlipOutputs Run(const InstructFlipInputs& inputs, const InstructFlipTargets* targets);
  torch::Tensor LanguageModelLoss(const torch::Tensor& query_states, const TokenBatch& question,
                                  const torch::Tensor& answer, double normalizer);
  ModelConfig config_;
};
TORCH_MODULE(InstructFlip);

// Number of 11-way classes of the no_llm / mc style head: the reference's layout
// (illumination 1..4 with 0 = none, environment 5..7, camera quality 8..10).
inline constexpr int kStyleClasses = 11;
inline constexpr int kSpoofTypeClasses = 11;

// The reference's InfoNCE (SimCLR's NT-Xent) of two views' embeddings a, b
// (N, D): over the 2N L2-normalised rows, row i's positive is its other view
// and the other 2N - 2 rows its negatives; the mean over rows of
// -log(exp(s_pos / T) / sum_{k != i} exp(s_ik / T)), s the cosine similarity.
torch::Tensor InfoNce(const torch::Tensor& a, const torch::Tensor& b, double temperature);
inline constexpr double kSslTemperature = 0.1;  // the reference's InfoNCELoss(temperature=0.1)

}  // namespace instructflip
