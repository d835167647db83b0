#include "model/instruct_flip.h"

#include <limits>

#include "dataio/base/check.h"

namespace instructflip {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// Cross-entropy over the rows whose class is known (-100: no ground truth).
// A batch without any known class (e.g. MSU/CASIA/Replay/OULU, which annotate
// no spoof type) gives 0, not PyTorch's 0/0 = NaN, so it trains on.
torch::Tensor KnownClassCrossEntropy(const torch::Tensor& logits, const torch::Tensor& classes) {
  const torch::Tensor sum = F::cross_entropy(logits.to(torch::kFloat32), classes,
                                             F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
  return sum / classes.ne(-100).sum().clamp_min(1).to(torch::kFloat32);
}

}  // namespace

torch::Tensor InfoNce(const torch::Tensor& a, const torch::Tensor& b, double temperature) {
  IF_REQUIRE(a.dim() == 2 && a.sizes() == b.sizes() && a.size(0) >= 2, "InfoNCE needs two (N, D) batches, N >= 2");
  const int64_t N = a.size(0);
  const torch::Tensor f = F::normalize(torch::cat({a, b}).to(torch::kFloat32), F::NormalizeFuncOptions().dim(1));
  const torch::Tensor self = torch::eye(2 * N, f.options().dtype(torch::kBool));
  const torch::Tensor logits = (f.matmul(f.t()) / temperature).masked_fill(self, -std::numeric_limits<float>::infinity());
  const torch::Tensor positive = torch::cat({torch::arange(N, 2 * N), torch::arange(0, N)}).to(f.device());
  return F::cross_entropy(logits, positive);
}

namespace {
void MoveTo(torch::Tensor* t, const torch::Device& device) {
  if (t->defined()) *t = t->to(device, /*non_blocking=*/true);
}
}  // namespace

InstructFlipInputs ToDevice(const InstructFlipInputs& inputs, const torch::Device& device) {
  InstructFlipInputs out = inputs;
  for (torch::Tensor* t : {&out.images, &out.cue_noise, &out.ssl_views}) MoveTo(t, device);
  for (TokenBatch* t : {&out.content_question_qformer, &out.style_question_qformer, &out.content_question_t5,
                        &out.style_question_t5}) {
    MoveTo(&t->ids, device);
    MoveTo(&t->keep, device);
  }
  return out;
}

InstructFlipTargets ToDevice(const InstructFlipTargets& targets, const torch::Device& device) {
  InstructFlipTargets out = targets;
  for (torch::Tensor* t : {&out.label, &out.content_answer_t5, &out.style_answer_t5, &out.content_class,
                           &out.style_class})
    MoveTo(t, device);
  return out;
}

InstructFlipExample ToDevice(const InstructFlipExample& example, const torch::Device& device) {
  return {ToDevice(example.inputs, device), ToDevice(example.targets, device)};
}

InstructFlipImpl::InstructFlipImpl(const ModelConfig& c, bool with_language_model) : config_(c) {
  ValidateModelConfig(c);
  IF_REQUIRE(c.qformer.vocab_size > 0 && c.t5.vocab_size > 0,
             "model config: vocabulary sizes are unresolved (0); call ResolveVocabularySizes with the tokenizers");
  const int width = c.vision.width;
  visual_encoder = register_module("visual_encoder", CLIPVision(c.vision));
  const Variant v = c.variant;
  if (v == Variant::kMultiClass) {
    content_head = register_module("content_cls", NormalizedClassifier(width, kSpoofTypeClasses));
    style_head = register_module("style_cls", NormalizedClassifier(width, kStyleClasses));
  } else {
    if (c.has_content_branch()) content_Qformer = register_module("content_Qformer", QFormer(c.qformer, width));
    if (c.has_style_branch()) style_Qformer = register_module("style_Qformer", QFormer(c.qformer, width));
    if (c.has_llm() || v == Variant::kVisionContent || v == Variant::kVisionContentStyle) {
      t5_proj = register_module("t5_proj", nn::Linear(c.qformer.hidden, c.t5.d_model));
      if (with_language_model) {
        t5_model = register_module("t5_model", T5Model(c.t5));
        FreezeT5BaseWeights(*t5_model);  // frozen, but for LoRA adapters (t5.lora)
      }
    }
    if (v == Variant::kNoLlm) {
      content_head = register_module("content_head", NormalizedClassifier(c.qformer.hidden, kSpoofTypeClasses));
      style_head = register_module("style_head", NormalizedClassifier(c.qformer.hidden, kStyleClasses));
    }
    if (c.has_content_branch()) fusion = register_module("fusion", FusionModule(width, c.fusion));
    if (v == Variant::kFull || v == Variant::kNoLlm)
      cue_generator = register_module("cue_generator", CueGenerator(width, c.cue_hidden));
  }
  cls_layer = register_module("cls_layer", NormalizedClassifier(width, 2));
  if (c.loss.ssl > 0) {
    namespace nn = torch::nn;
    constexpr int kHidden = 256;  // the reference's: 768 -> 256 -> 256 -> 256
    ssl_branch = register_module(
        "ssl_branch", nn::Sequential(nn::Linear(width, kHidden), nn::BatchNorm1d(kHidden), nn::ReLU(),
                                     nn::Linear(kHidden, kHidden), nn::BatchNorm1d(kHidden), nn::ReLU(),
                                     nn::Linear(kHidden, kHidden)));
  }
}

void InstructFlipImpl::train(bool on) {
  nn::Module::train(on);
  if (!t5_model.is_empty()) t5_model->train(false);  // frozen: no dropout, no batch statistics
}

std::vector<torch::Tensor> InstructFlipImpl::trainable_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

torch::Tensor InstructFlipImpl::LanguageModelLoss(const torch::Tensor& query_states, const TokenBatch& question,
                                                  const torch::Tensor& answer, double normalizer) {
  // Only rows whose answer is known take part (the reference drops "No GT" rows).
  const torch::Tensor rows = answer.ne(-100).any(1).nonzero().squeeze(1);
  if (rows.numel() == 0) return query_states.sum() * 0.0;
  const torch::Tensor projected = t5_proj(query_states.index_select(0, rows));  // (N, Q, d_model)
  const torch::Tensor question_ids = question.ids.index_select(0, rows);
  const torch::Tensor inputs = torch::cat({projected, t5_model->shared(question_ids).to(projected.scalar_type())}, 1);
  const torch::Tensor keep = torch::cat(
      {torch::ones({rows.size(0), projected.size(1)}, question.keep.options()), question.keep.index_select(0, rows)}, 1);
  const torch::Tensor encoded = t5_model->Encode(inputs, keep);
  return t5_model->LanguageModelLoss(encoded, keep, answer.index_select(0, rows), normalizer);
}

torch::Tensor InstructFlipImpl::GenerateAnswers(const torch::Tensor& query_states, const TokenBatch& question_t5,
                                                int64_t eos_id) {
  IF_REQUIRE(!t5_model.is_empty(), "model variant '", kVariants.Name(config_.variant), "' has no language model");
  torch::NoGradGuard no_grad;
  const torch::Tensor projected = t5_proj(query_states);
  const torch::Tensor inputs = torch::cat({projected, t5_model->shared(question_t5.ids).to(projected.scalar_type())}, 1);
  const torch::Tensor keep = torch::cat(
      {torch::ones({projected.size(0), projected.size(1)}, question_t5.keep.options()), question_t5.keep}, 1);
  return t5_model->GenerateGreedy(t5_model->Encode(inputs, keep), keep, config_.max_new_tokens, eos_id);
}

InstructFlipOutputs InstructFlipImpl::forward(const InstructFlipInputs& in) { return Run(in, nullptr); }

InstructFlipOutputs InstructFlipImpl::forward(const InstructFlipInputs& in, const InstructFlipTargets& targets) {
  return Run(in, &targets);
}

InstructFlipOutputs InstructFlipImpl::Run(const InstructFlipInputs& in, const InstructFlipTargets* targets) {
  const ModelConfig& c = config_;
  const bool with_losses = targets != nullptr;
  const Variant v = c.variant;
  IF_REQUIRE(!with_losses || !t5_model.is_empty() || !(c.has_llm() || v == Variant::kVisionContent || v == Variant::kVisionContentStyle),
             "this model was built without its language model (scoring only): it cannot compute training losses");
  InstructFlipOutputs out;
  InstructFlipLosses losses;

  // 1. Vision encoder.
  const VisionFeatures vision = visual_encoder(in.images);
  const int64_t B = in.images.size(0);

  auto weighted = [&](double weight, const torch::Tensor& loss) {
    return loss.defined() && weight != 0.0 ? loss.to(torch::kFloat32) * weight : torch::Tensor();
  };
  auto add = [](torch::Tensor total, const torch::Tensor& term) {
    return !term.defined() ? total : (total.defined() ? total + term : term);
  };

  if (v == Variant::kMultiClass) {
    // Heads straight on the vision encoder: class token of the content view and
    // the first style statistic (layer-1 token mean), as the reference's "mc".
    const torch::Tensor cls_token = vision.content.select(1, 0);
    out.logits = cls_layer(cls_token);
    if (with_losses) {
      losses.classification = F::cross_entropy(out.logits.to(torch::kFloat32), targets->label);
      losses.content_lm = KnownClassCrossEntropy(content_head(cls_token), targets->content_class);
      losses.style_lm = KnownClassCrossEntropy(style_head(vision.style.select(1, 0)), targets->style_class);
    }
  } else if (v == Variant::kVisionOnly) {
    out.logits = cls_layer(vision.content.select(1, 0));
    if (with_losses) losses.classification = F::cross_entropy(out.logits.to(torch::kFloat32), targets->label);
  } else {
    // 2. Q-Formers: each reads its instruction and cross-attends to its view.
    out.content_queries = content_Qformer(in.content_question_qformer.ids, in.content_question_qformer.keep,
                                          vision.content);
    torch::Tensor queries = out.content_queries;
    if (c.has_style_branch()) {
      out.style_queries = style_Qformer(in.style_question_qformer.ids, in.style_question_qformer.keep, vision.style);
      queries = torch::cat({out.content_queries, out.style_queries}, 1);
    }
    // 3. Language branch: frozen T5 answers the questions (or 11-way heads in no_llm).
    if (with_losses) {
      if (!t5_model.is_empty()) {
        losses.content_lm = LanguageModelLoss(out.content_queries, in.content_question_t5, targets->content_answer_t5,
                                              targets->content_lm_tokens);
        if (c.has_style_branch())
          losses.style_lm =
              LanguageModelLoss(out.style_queries, in.style_question_t5, targets->style_answer_t5, targets->style_lm_tokens);
      } else {
        losses.content_lm = KnownClassCrossEntropy(content_head(out.content_queries.select(1, 0)), targets->content_class);
        losses.style_lm = KnownClassCrossEntropy(style_head(out.style_queries.select(1, 0)), targets->style_class);
      }
    }
    // 4. Fusion of the content tokens with the query states.
    torch::Tensor fused = fusion(vision.content, queries);  // (B, 1 + P, W)
    torch::Tensor patches = fused.narrow(1, 1, fused.size(1) - 1);
    if (with_losses && !cue_generator.is_empty() && is_training() && c.cue_noise_weight > 0.0) {
      // Spoof samples' patch tokens get noise, so the cue map must explain
      // spoofing from perturbed evidence; the class token stays clean.
      const torch::Tensor spoof = targets->label.to(patches.scalar_type()).view({B, 1, 1});
      const torch::Tensor noise = in.cue_noise.defined() ? in.cue_noise.to(patches.options()) : torch::randn_like(patches);
      patches = patches + noise * (c.cue_noise_weight * spoof);
    }
    // 5. Heads: classifier on the class token, cue map on the patch grid.
    out.logits = cls_layer(fused.select(1, 0));
    if (!cue_generator.is_empty()) {
      const int64_t grid = c.vision.image_size / c.vision.patch_size;
      out.cue_map = cue_generator(patches.transpose(1, 2).reshape({B, patches.size(2), grid, grid}));
    }
    if (with_losses) {
      losses.classification = F::cross_entropy(out.logits.to(torch::kFloat32), targets->label);
      if (out.cue_map.defined()) {
        const torch::Tensor target = targets->label.to(torch::kFloat32).view({B, 1, 1, 1}).expand_as(out.cue_map);
        // The ATen op, beta passed: LibTorch 1.13's functional form ignores its options' beta (uses 1).
        losses.cue = torch::smooth_l1_loss(out.cue_map.to(torch::kFloat32), target, at::Reduction::Mean, c.cue_beta);
      }
    }
  }
  out.spoof_score = torch::softmax(out.logits.to(torch::kFloat32), 1).select(1, 1);
  // 6. SSL branch (training): InfoNCE between two augmented views' class tokens.
  if (with_losses && !ssl_branch.is_empty() && in.ssl_views.defined()) {
    auto embed = [&](int64_t view) {
      return ssl_branch->forward(visual_encoder(in.ssl_views[view]).content.select(1, 0).to(torch::kFloat32));
    };
    losses.ssl = InfoNce(embed(0), embed(1), kSslTemperature);
  }

  if (with_losses) {
    torch::Tensor total;
    total = add(total, weighted(c.loss.content_lm, losses.content_lm));
    total = add(total, weighted(c.loss.style_lm, losses.style_lm));
    total = add(total, weighted(c.loss.classification, losses.classification));
    total = add(total, weighted(c.loss.cue, losses.cue));
    total = add(total, weighted(c.loss.ssl, losses.ssl));
    losses.total = total;
    out.losses = losses;
  }
  return out;
}

}  // namespace instructflip
