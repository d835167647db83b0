// The InstructFLIP model end to end on the tiny configuration (tiny_model.h):
// shapes, style statistics, padding invariance, the frozen T5, the classifier
// normalisation, cue noise, overfitting a fixed batch until the generated
// explanations are exact, determinism, the ablation variants, and (one test)
// the paper's base sizes.
#include "model/instruct_flip.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/instruction_batch.h"
#include "model/instructions.h"
#include "model/t5_warmup.h"
#include "model/weights.h"
#include "tests/common/test_util.h"
#include "tests/model/tiny_model.h"

namespace instructflip {
namespace {

using testutil::GetTinyTokenizers;
using testutil::MakeTinyInputs;
using testutil::MixedSamples;
using testutil::TinyConfig;
using testutil::TinySample;

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

std::vector<int64_t> Sizes(const torch::Tensor& t) { return t.sizes().vec(); }

InstructFlip MakeTinyModel(Variant variant = Variant::kFull, uint64_t seed = 1) {
  torch::manual_seed(seed);
  return InstructFlip(TinyConfig(variant));
}

std::set<std::string> ChildNames(torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_children()) names.insert(item.key());
  return names;
}

// --------------------------------------------------------------------------------------------
TEST(TinyModel, ShapesOfEveryIntermediate) {
  InstructFlip model = MakeTinyModel();
  model->eval();
  torch::manual_seed(2);
  const InstructFlipExample in = MakeTinyInputs(model->config(), MixedSamples());
  const int64_t B = 4, W = 32, Q = 4;
  torch::NoGradGuard no_grad;

  const VisionFeatures vision = model->visual_encoder(in.inputs.images);
  EXPECT_EQ(Sizes(vision.content), (std::vector<int64_t>{B, 1 + 16, W}));
  EXPECT_EQ(Sizes(vision.style), (std::vector<int64_t>{B, 2 * 2, W}));

  // Q-Former on texts of 1 and 7 tokens, the 7-token batch with a padded row.
  const torch::Tensor ids7 = torch::randint(5, 40, {B, 7}, torch::kLong);
  torch::Tensor keep7 = torch::ones({B, 7}, torch::kLong);
  keep7[0].narrow(0, 3, 4).fill_(0);
  keep7[2].narrow(0, 1, 6).fill_(0);
  const torch::Tensor q7 = model->content_Qformer(ids7 * keep7, keep7, vision.content);
  EXPECT_EQ(Sizes(q7), (std::vector<int64_t>{B, Q, W}));
  const torch::Tensor q1 = model->style_Qformer(ids7.narrow(1, 0, 1), torch::ones({B, 1}, torch::kLong), vision.style);
  EXPECT_EQ(Sizes(q1), (std::vector<int64_t>{B, Q, W}));

  const torch::Tensor qc = model->content_Qformer(in.inputs.content_question_qformer.ids, in.inputs.content_question_qformer.keep,
                                                  vision.content);
  const torch::Tensor qs =
      model->style_Qformer(in.inputs.style_question_qformer.ids, in.inputs.style_question_qformer.keep, vision.style);
  const torch::Tensor fused = model->fusion(vision.content, torch::cat({qc, qs}, 1));
  EXPECT_EQ(Sizes(fused), (std::vector<int64_t>{B, 17, W}));

  const InstructFlipOutputs out = model->forward(in.inputs, in.targets);
  EXPECT_EQ(Sizes(out.logits), (std::vector<int64_t>{B, 2}));
  EXPECT_EQ(Sizes(out.spoof_score), (std::vector<int64_t>{B}));
  EXPECT_EQ(Sizes(out.cue_map), (std::vector<int64_t>{B, 3, 4, 4}));
  EXPECT_EQ(Sizes(out.content_queries), (std::vector<int64_t>{B, Q, W}));
  EXPECT_EQ(Sizes(out.style_queries), (std::vector<int64_t>{B, Q, W}));
  // The forward pass is the composition of the parts.
  EXPECT_LT(MaxAbsDiff(out.content_queries, qc), 1e-6);
  EXPECT_LT(MaxAbsDiff(out.style_queries, qs), 1e-6);
  EXPECT_LT(MaxAbsDiff(out.logits, model->cls_layer(fused.select(1, 0))), 1e-6);
  // spoof_score = softmax(logits)[:, 1] in [0, 1].
  EXPECT_GE(out.spoof_score.min().item<double>(), 0.0);
  EXPECT_LE(out.spoof_score.max().item<double>(), 1.0);
  EXPECT_LT(MaxAbsDiff(out.spoof_score, torch::softmax(out.logits, 1).select(1, 1)), 1e-7);
  ASSERT_TRUE(out.losses.has_value());
  for (const torch::Tensor& loss : {out.losses->total, out.losses->content_lm, out.losses->style_lm,
                                    out.losses->classification, out.losses->cue}) {
    ASSERT_TRUE(loss.defined());
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
  }
  // total = 0.4 content + 0.4 style + 0.15 CE + 0.05 cue
  const InstructFlipLosses& l = *out.losses;
  EXPECT_NEAR(l.total.item<double>(),
              0.4 * l.content_lm.item<double>() + 0.4 * l.style_lm.item<double>() +
                  0.15 * l.classification.item<double>() + 0.05 * l.cue.item<double>(),
              1e-5);
  // CE is the mean cross-entropy of the logits.
  EXPECT_NEAR(l.classification.item<double>(),
              torch::nn::functional::cross_entropy(out.logits, in.targets.label).item<double>(), 1e-6);
  // The cue loss is SmoothL1 towards the label with the configured beta (0.01), by hand.
  const double beta = model->config().cue_beta;
  ASSERT_EQ(beta, 0.01);
  const torch::Tensor target = in.targets.label.to(torch::kFloat64).view({B, 1, 1, 1}).expand_as(out.cue_map);
  const torch::Tensor d = (out.cue_map.to(torch::kFloat64) - target).abs();
  const double expected = torch::where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta).mean().item<double>();
  EXPECT_NEAR(l.cue.item<double>(), expected, 1e-6);
}

// --------------------------------------------------------------------------------------------
// style = [mean_1, std_1, mean_2, std_2] over all 17 tokens (CLS included) of
// each encoder layer's raw output, std unbiased; content = post_layernorm of
// the last layer's output.
// Fresh Q-Former modules start as BERT's _init_weights leaves them (the
// reference's cross-attention and *_query layers; all of it without pretrained
// BERT): every Linear weight normal(0, 0.02) with zero bias, embeddings
// normal(0, 0.02), LayerNorms 1 and 0; not LibTorch's kaiming-uniform.
TEST(QFormer, FreshModulesAreInitialisedAsBertDoes) {
  torch::manual_seed(5);
  QFormerConfig c;
  c.hidden = 64, c.heads = 4, c.intermediate = 256, c.num_queries = 4, c.vocab_size = 100, c.max_positions = 32;
  QFormer qformer(c, /*encoder_width=*/48);
  int linears = 0;
  for (const auto& item : qformer->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    const bool layer_norm = name.find("LayerNorm") != std::string::npos;
    if (layer_norm) {
      EXPECT_TRUE(torch::equal(p, name.find("weight") != std::string::npos ? torch::ones_like(p) : torch::zeros_like(p)))
          << name;
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      EXPECT_TRUE(torch::equal(p, torch::zeros_like(p))) << name;
    } else {
      ++linears;
      const double std = p.std().item<double>();
      EXPECT_NEAR(std, 0.02, 0.002) << name;  // kaiming-uniform here: 1/sqrt(3 * 64) = 0.072
      EXPECT_NEAR(p.mean().item<double>(), 0.0, 5 * 0.02 / std::sqrt(double(p.numel()))) << name;  // 5 std errors
    }
  }
  EXPECT_GT(linears, 10);
}

TEST(TinyModel, StyleStatisticsAreInterleavedPerLayerMeanAndUnbiasedStd) {
  InstructFlip model = MakeTinyModel();
  torch::manual_seed(3);
  const torch::Tensor images = torch::randn({3, 3, 32, 32});
  torch::NoGradGuard no_grad;
  const VisionFeatures vision = model->visual_encoder(images);
  CLIPVision& v = model->visual_encoder;
  torch::Tensor x = v->pre_layrnorm(v->embeddings(images));
  std::vector<torch::Tensor> expected;
  for (size_t i = 0; i < v->encoder->layers->size(); ++i) {
    x = v->encoder->layers[i]->as<CLIPEncoderLayer>()->forward(x);
    const torch::Tensor x64 = x.to(torch::kDouble);
    const torch::Tensor mean = x64.mean(1);
    const torch::Tensor std = ((x64 - mean.unsqueeze(1)).pow(2).sum(1) / (x64.size(1) - 1)).sqrt();
    expected.push_back(mean);
    expected.push_back(std);
  }
  ASSERT_EQ(vision.style.size(1), 4);
  for (int64_t j = 0; j < 4; ++j)
    EXPECT_LT(MaxAbsDiff(vision.style.select(1, j), expected[j]), 1e-5) << "style token " << j;
  EXPECT_LT(MaxAbsDiff(vision.content, v->post_layernorm(x)), 1e-6);
  // The patch embedding is row-major: token 1 + r*4 + c is patch (r, c).
  const torch::Tensor patches = v->embeddings->patch_embedding(images).flatten(2).transpose(1, 2);
  const torch::Tensor embedded = v->embeddings(images);
  EXPECT_LT(MaxAbsDiff(embedded.narrow(1, 1, 16) - v->embeddings->position_embedding->weight.narrow(0, 1, 16),
                       patches),
            1e-5);
  const torch::Tensor patch_r1_c2 = images.narrow(2, 8, 8).narrow(3, 16, 8);  // rows 8..15, cols 16..23
  const torch::Tensor direct = (v->embeddings->patch_embedding->weight.unsqueeze(0) * patch_r1_c2.unsqueeze(1))
                                   .sum({2, 3, 4});  // (B, W)
  EXPECT_LT(MaxAbsDiff(patches.select(1, 1 * 4 + 2), direct), 1e-4);
}

// --------------------------------------------------------------------------------------------
// Extra padding tokens after a Q-Former text change nothing: queries see only
// the kept tokens (in eval and train mode; the tiny config has no dropout).
TEST(TinyModel, QFormerQueriesIgnoreTextPadding) {
  InstructFlip model = MakeTinyModel();
  torch::manual_seed(4);
  const torch::Tensor image = torch::randn({2, 17, 32});
  const torch::Tensor ids = torch::randint(5, 40, {2, 6}, torch::kLong);
  torch::Tensor keep = torch::ones({2, 6}, torch::kLong);
  keep[1].narrow(0, 4, 2).fill_(0);
  for (const bool training : {false, true}) {
    model->train(training);
    torch::NoGradGuard no_grad;
    const torch::Tensor base = model->content_Qformer(ids * keep, keep, image);
    for (const int64_t extra : {1, 5, 20}) {
      const torch::Tensor more_ids = torch::cat({ids * keep, torch::zeros({2, extra}, torch::kLong)}, 1);
      const torch::Tensor more_keep = torch::cat({keep, torch::zeros({2, extra}, torch::kLong)}, 1);
      EXPECT_LT(MaxAbsDiff(model->content_Qformer(more_ids, more_keep, image), base), 1e-5)
          << "extra " << extra << " training " << training;
      // Even garbage ids under the padding are ignored.
      const torch::Tensor garbage = torch::cat({ids, torch::randint(5, 40, {2, extra}, torch::kLong)}, 1);
      EXPECT_LT(MaxAbsDiff(model->content_Qformer(garbage, more_keep, image), base), 1e-5);
    }
    // Whereas a real token does change them.
    const torch::Tensor other = ids.clone();
    other[0][1] = other[0][1].item<int64_t>() == 7 ? 8 : 7;
    EXPECT_GT(MaxAbsDiff(model->content_Qformer(other * keep, keep, image).select(0, 0), base.select(0, 0)), 1e-4);
  }
}

// --------------------------------------------------------------------------------------------
// Parameters that get no gradient by design: the last Q-Former layer's text
// feed-forward (encoder.layer.<last>.intermediate / .output). The query states
// are read after the last layer, so the text positions' final feed-forward
// feeds nothing (the model even skips computing it). They exist so that
// bert-base-uncased / BLIP-2 checkpoints load one to one.
bool NoGradientByDesign(const std::string& name, int qformer_layers) {
  const std::string last = "encoder.layer." + std::to_string(qformer_layers - 1) + ".";
  for (const char* branch : {"content_Qformer.", "style_Qformer."})
    for (const char* part : {"intermediate.", "output."})
      if (name.rfind(std::string(branch) + last + part, 0) == 0) return true;
  return false;
}

TEST(TinyModel, T5StaysFrozenAndEverythingElseGetsGradients) {
  InstructFlip model = MakeTinyModel();
  model->train();
  EXPECT_FALSE(model->t5_model->is_training()) << "the frozen T5 stays in eval mode";
  torch::manual_seed(5);
  const InstructFlipExample in = MakeTinyInputs(model->config(), MixedSamples());
  std::map<std::string, torch::Tensor> t5_before;
  for (const auto& p : model->t5_model->named_parameters()) t5_before[p.key()] = p.value().detach().clone();
  ASSERT_GT(t5_before.size(), 10u);

  const std::vector<torch::Tensor> trainable = model->trainable_parameters();
  torch::optim::AdamW optimizer(trainable, torch::optim::AdamWOptions(1e-3));
  optimizer.zero_grad();
  const InstructFlipOutputs out = model->forward(in.inputs, in.targets);
  out.losses->total.backward();

  for (const auto& p : model->t5_model->named_parameters()) {
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
  }
  // trainable_parameters() is exactly the parameters outside t5_model.
  int64_t outside_t5 = 0;
  std::set<const void*> trainable_set;
  for (const auto& t : trainable) trainable_set.insert(t.unsafeGetTensorImpl());
  std::vector<std::string> exceptions;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.rfind("t5_model.", 0) == 0) {
      EXPECT_EQ(trainable_set.count(p.value().unsafeGetTensorImpl()), 0u) << name;
      continue;
    }
    ++outside_t5;
    EXPECT_EQ(trainable_set.count(p.value().unsafeGetTensorImpl()), 1u) << name;
    const torch::Tensor& grad = p.value().grad();
    if (NoGradientByDesign(name, model->config().qformer.layers)) {
      exceptions.push_back(name);
      EXPECT_TRUE(!grad.defined() || grad.abs().max().item<double>() == 0.0) << name << " should get no gradient";
      continue;
    }
    ASSERT_TRUE(grad.defined()) << name << " has no gradient";
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << name;
    EXPECT_GT(grad.abs().max().item<double>(), 0.0) << name << " has an all-zero gradient";
  }
  EXPECT_EQ(outside_t5, static_cast<int64_t>(trainable.size()));
  // 2 Q-Formers x (intermediate.dense + output.dense + output.LayerNorm) x (weight, bias).
  EXPECT_EQ(exceptions.size(), 12u);

  std::map<std::string, torch::Tensor> others_before;
  for (const auto& p : model->named_parameters()) others_before[p.key()] = p.value().detach().clone();
  optimizer.step();
  for (const auto& p : model->t5_model->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), t5_before.at(p.key()))) << p.key() << " changed";
  EXPECT_FALSE(torch::equal(model->visual_encoder->embeddings->class_embedding,
                            others_before.at("visual_encoder.embeddings.class_embedding")));
  EXPECT_FALSE(torch::equal(model->t5_proj->weight, others_before.at("t5_proj.weight")));
}

// --------------------------------------------------------------------------------------------
TEST(TinyModel, ClassifierColumnsHaveUnitNormAfterForward) {
  InstructFlip model = MakeTinyModel();
  torch::Tensor& w = model->cls_layer->layer->weight;
  ASSERT_EQ(Sizes(w), (std::vector<int64_t>{2, 32}));
  EXPECT_GT(MaxAbsDiff(w.norm(2, 0), torch::ones({32})), 0.1) << "default init is not normalised yet";
  torch::manual_seed(6);
  const InstructFlipExample in = MakeTinyInputs(model->config(), MixedSamples());
  for (const bool training : {true, false}) {
    model->train(training);
    {
      torch::NoGradGuard no_grad;
      w.mul_(3.0);  // as after an optimizer step
    }
    const InstructFlipOutputs out = model->forward(in.inputs);
    EXPECT_LT(MaxAbsDiff(w.norm(2, 0), torch::ones({32})), 1e-5) << "training " << training;
    // The logits use the normalised weights.
    EXPECT_LT(MaxAbsDiff(out.logits, torch::nn::functional::linear(
                                         model->fusion(model->visual_encoder(in.inputs.images).content,
                                                       torch::cat({out.content_queries, out.style_queries}, 1))
                                             .select(1, 0),
                                         w, model->cls_layer->layer->bias)),
              1e-5);
  }
  EXPECT_TRUE(w.requires_grad()) << "normalisation must not detach the parameter";
}

// --------------------------------------------------------------------------------------------
TEST(TinyModel, CueNoiseOnlyInTrainingAndOnlyOnSpoofPatchTokens) {
  InstructFlip model = MakeTinyModel();
  ASSERT_GT(model->config().cue_noise_weight, 0.0);
  torch::manual_seed(7);
  const InstructFlipExample mixed = MakeTinyInputs(model->config(), MixedSamples());  // live, spoof, live, spoof
  const InstructFlipExample live = MakeTinyInputs(model->config(), {{0, 0, 0, 0, 1}, {0, 1, 1, 2, 2}});
  torch::NoGradGuard no_grad;

  model->eval();
  const InstructFlipOutputs e1 = model->forward(mixed.inputs), e2 = model->forward(mixed.inputs);
  EXPECT_TRUE(torch::equal(e1.logits, e2.logits));
  EXPECT_TRUE(torch::equal(e1.cue_map, e2.cue_map));

  model->train();
  const InstructFlipOutputs l1 = model->forward(live.inputs, live.targets),
                            l2 = model->forward(live.inputs, live.targets);
  EXPECT_TRUE(torch::equal(l1.logits, l2.logits));
  EXPECT_TRUE(torch::equal(l1.cue_map, l2.cue_map));

  // Without targets (scoring) the model cannot know which rows are spoofs: no noise at all.
  const InstructFlipOutputs u = model->forward(mixed.inputs);
  EXPECT_LT(MaxAbsDiff(u.cue_map, e1.cue_map), 1e-6);
  const InstructFlipOutputs t1 = model->forward(mixed.inputs, mixed.targets),
                            t2 = model->forward(mixed.inputs, mixed.targets);
  // Noise never reaches the class token: logits identical (and equal to eval's, no dropout here).
  EXPECT_TRUE(torch::equal(t1.logits, t2.logits));
  EXPECT_LT(MaxAbsDiff(t1.logits, e1.logits), 1e-6);
  for (int64_t b = 0; b < 4; ++b) {
    const bool spoof = mixed.targets.label[b].item<int64_t>() == 1;
    if (spoof) {
      EXPECT_GT(MaxAbsDiff(t1.cue_map[b], t2.cue_map[b]), 1e-3) << "spoof row " << b << " got no noise";
      EXPECT_GT(MaxAbsDiff(t1.cue_map[b], e1.cue_map[b]), 1e-3) << "spoof row " << b;
    } else {
      EXPECT_TRUE(torch::equal(t1.cue_map[b], t2.cue_map[b])) << "live row " << b << " got noise";
      EXPECT_LT(MaxAbsDiff(t1.cue_map[b], e1.cue_map[b]), 1e-6) << "live row " << b;
    }
  }
}

// --------------------------------------------------------------------------------------------
// Two models built after the same seed are identical and compute identical outputs.
TEST(TinyModel, SameSeedGivesIdenticalModelAndOutputs) {
  InstructFlip a = MakeTinyModel(Variant::kFull, 7);
  InstructFlip b = MakeTinyModel(Variant::kFull, 7);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) {
    ASSERT_TRUE(pb.contains(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  }
  InstructFlip c = MakeTinyModel(Variant::kFull, 8);
  EXPECT_FALSE(torch::equal(c->visual_encoder->embeddings->patch_embedding->weight,
                            a->visual_encoder->embeddings->patch_embedding->weight));

  torch::manual_seed(9);
  const InstructFlipExample in = MakeTinyInputs(a->config(), MixedSamples());
  for (const bool training : {false, true}) {
    a->train(training);
    b->train(training);
    torch::manual_seed(10);  // the cue noise draws from the generator in training
    const InstructFlipOutputs oa = a->forward(in.inputs, in.targets);
    torch::manual_seed(10);
    const InstructFlipOutputs ob = b->forward(in.inputs, in.targets);
    EXPECT_TRUE(torch::equal(oa.logits, ob.logits)) << "training " << training;
    EXPECT_TRUE(torch::equal(oa.cue_map, ob.cue_map)) << "training " << training;
    EXPECT_TRUE(torch::equal(oa.content_queries, ob.content_queries));
    EXPECT_TRUE(torch::equal(oa.style_queries, ob.style_queries));
    EXPECT_TRUE(torch::equal(oa.losses->total, ob.losses->total));
  }
}

// --------------------------------------------------------------------------------------------
struct VariantExpectation {
  const char* name;
  std::set<std::string> children;
  bool content_lm, style_lm, cue;
};

// MSU/CASIA/Replay/OULU annotate neither spoof type nor style: a batch with no
// ground truth for either question gives question losses of exactly 0 (not
// NaN) in every variant that has them, and the classifier still trains.
TEST(TinyModel, BatchesWithoutAnyQuestionGroundTruthStayFinite) {
  for (const char* name : {"full", "no_llm", "mc"}) {
    SCOPED_TRACE(name);
    InstructFlip model = MakeTinyModel(kVariants.Parse(name, "variant"), 13);
    model->train();
    torch::manual_seed(14);
    std::vector<TinySample> samples(4);
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = {-1, -1, -1, -1, static_cast<int64_t>(i), 1};
    InstructFlipExample in = MakeTinyInputs(model->config(), samples);
    EXPECT_TRUE(in.targets.content_class.eq(-100).all().item<bool>());
    EXPECT_TRUE(in.targets.style_class.eq(-100).all().item<bool>());
    const InstructFlipLosses l = *model->forward(in.inputs, in.targets).losses;
    EXPECT_EQ(l.content_lm.item<double>(), 0.0);
    EXPECT_EQ(l.style_lm.item<double>(), 0.0);
    ASSERT_TRUE(std::isfinite(l.total.item<double>()));
    l.total.backward();
    EXPECT_GT(model->cls_layer->layer->weight.grad().abs().max().item<double>(), 0.0);
  }
}

// The reference's classifier ablations (no_llm, mc; its CAMCDataset): empty
// prompts, the style attribute drawn uniformly for every sample (lives too),
// and "none" classes for a live face's illumination and environment.
TEST(TinyModel, ClassifierVariantsUseEmptyPromptsAndTheReferenceStyleClasses) {
  EXPECT_EQ(StyleClass(StyleQuestion::kIllumination, 0, -1, -1, -1), 0);
  EXPECT_EQ(StyleClass(StyleQuestion::kIllumination, 0, 2, 1, 0), 0);
  EXPECT_EQ(StyleClass(StyleQuestion::kIllumination, 1, 2, 1, 0), 3);
  EXPECT_EQ(StyleClass(StyleQuestion::kIllumination, 1, -1, 1, 0), -100);
  EXPECT_EQ(StyleClass(StyleQuestion::kEnvironment, 0, -1, -1, -1), 5);
  EXPECT_EQ(StyleClass(StyleQuestion::kEnvironment, 1, 0, 1, 0), 7);
  EXPECT_EQ(StyleClass(StyleQuestion::kCameraQuality, 0, -1, -1, 2), 10);
  EXPECT_EQ(StyleClass(StyleQuestion::kCameraQuality, 1, -1, -1, -1), -100);

  const testutil::TinyTokenizers& tok = testutil::GetTinyTokenizers();
  const std::vector<int64_t> empty_prompt = tok.bert->Encode("");
  for (const char* name : {"no_llm", "mc", "full"}) {
    SCOPED_TRACE(name);
    const ModelConfig config = testutil::TinyConfig(kVariants.Parse(name, "variant"));
    InstructionBatcher batcher = testutil::MakeTinyBatcher(config);
    const bool classifier = !config.asks_questions();
    EXPECT_EQ(classifier, std::string(name) != "full");
    const InstructFlipInputs q = batcher.Questions(
        {StyleQuestion::kIllumination, StyleQuestion::kEnvironment, StyleQuestion::kCameraQuality});
    for (const TokenBatch* t : {&q.content_question_qformer, &q.style_question_qformer})
      for (int64_t i = 0; i < 3; ++i) {
        const torch::Tensor row = t->ids[i].masked_select(t->keep[i].to(torch::kBool));
        const std::vector<int64_t> ids(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
        EXPECT_EQ(ids == empty_prompt, classifier) << i;
      }
    // Live faces: the reference rule always asks camera quality, except in the
    // classifier variants, which draw each of the three for lives too.
    std::set<StyleQuestion> asked_of_lives;
    for (int64_t key = 0; key < 60; ++key)
      asked_of_lives.insert(batcher.TrainingQuestion(StyleQuestionRule::kReference, 0, key));
    EXPECT_EQ(asked_of_lives.size(), classifier ? 3u : 1u);
  }
}

// LoRA on the frozen T5 (t5.lora): adapters on the targeted layers only, a
// fresh adapter (B = 0) changes nothing, only adapters of the T5 train, and
// they are saved and loaded with the model.
TEST(TinyModel, LoraAdaptersAreTheOnlyTrainedPartOfTheT5) {
  ModelConfig config = TinyConfig(Variant::kFull);
  config.t5.lora.rank = 4;
  config.t5.lora.targets = "q,v,wo";
  torch::manual_seed(21);
  InstructFlip model(config);
  model->train();
  std::set<std::string> adapters, trainable_t5;
  for (const auto& item : model->named_parameters()) {
    if (item.key().rfind("t5_model.", 0) != 0) continue;
    if (IsLoraParameter(item.key())) adapters.insert(item.key());
    if (item.value().requires_grad()) trainable_t5.insert(item.key());
  }
  EXPECT_EQ(trainable_t5, adapters);
  // q, v in every attention (encoder self; decoder self and cross) and wo in every feed-forward, A and B each.
  const int attentions = config.t5.encoder_layers + 2 * config.t5.decoder_layers;
  const int feed_forwards = config.t5.encoder_layers + config.t5.decoder_layers;
  EXPECT_EQ(adapters.size(), static_cast<size_t>(2 * (2 * attentions + feed_forwards)));
  EXPECT_TRUE(adapters.count("t5_model.encoder.block.0.layer.0.SelfAttention.q_lora.A"));
  EXPECT_FALSE(adapters.count("t5_model.encoder.block.0.layer.0.SelfAttention.k_lora.A"));

  torch::manual_seed(22);
  const InstructFlipExample in = MakeTinyInputs(model->config(), testutil::MixedSamples());
  torch::manual_seed(23);
  const InstructFlipOutputs before = model->forward(in.inputs, in.targets);
  {
    torch::NoGradGuard no_grad;
    for (const std::string& name : adapters)
      if (name.back() == 'A') model->named_parameters()[name].normal_();  // B = 0: still no change
  }
  torch::manual_seed(23);
  const InstructFlipOutputs fresh = model->forward(in.inputs, in.targets);
  EXPECT_EQ(MaxAbsDiff(before.losses->content_lm, fresh.losses->content_lm), 0.0);
  fresh.losses->total.backward();
  double adapter_grad = 0;
  for (const std::string& name : adapters) {
    const torch::Tensor& grad = model->named_parameters()[name].grad();
    if (grad.defined()) adapter_grad = std::max(adapter_grad, grad.abs().max().item<double>());
  }
  EXPECT_GT(adapter_grad, 0.0);  // B's gradient (A's is 0 while B is 0)
  {
    torch::NoGradGuard no_grad;
    for (const std::string& name : adapters)
      if (name.back() == 'B') model->named_parameters()[name].fill_(0.05);
  }
  torch::manual_seed(23);
  const InstructFlipOutputs adapted = model->forward(in.inputs, in.targets);
  EXPECT_GT(MaxAbsDiff(before.losses->content_lm, adapted.losses->content_lm), 1e-6);

  instructflip::testing::TempDir dir;
  const std::string path = dir.path + "/lora.safetensors";
  SaveModelWeights(*model, path);
  torch::manual_seed(99);
  InstructFlip loaded(config);
  LoadModelWeights(*loaded, path);
  for (const std::string& name : adapters)
    EXPECT_TRUE(torch::equal(loaded->named_parameters()[name], model->named_parameters()[name])) << name;
  config.t5.lora.targets = "q,ffn";
  EXPECT_THROW(ValidateModelConfig(config), Error);
}

// InfoNCE against hand-computed cases and against the reference's own
// formulation (logits = [positive, negatives] / T, cross-entropy at 0).
TEST(InfoNce, MatchesHandComputedValuesAndTheReferenceFormulation) {
  const torch::Tensor e = torch::eye(2);
  // Views agree: each row's positive has similarity 1, its two negatives 0.
  EXPECT_NEAR(InfoNce(e, e, 0.1).item<double>(), std::log(1 + 2 * std::exp(-10.0)), 1e-7);
  // Views swapped: the positive has similarity 0, one negative 1.
  EXPECT_NEAR(InfoNce(e, e.flip(0), 0.1).item<double>(), std::log(2 + std::exp(10.0)), 1e-4);
  torch::manual_seed(5);
  const torch::Tensor a = torch::randn({5, 7}), b = torch::randn({5, 7});
  const int64_t N = 5;
  const torch::Tensor f = torch::nn::functional::normalize(torch::cat({a, b}),
                                                           torch::nn::functional::NormalizeFuncOptions().dim(1));
  const torch::Tensor sim = f.matmul(f.t());
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < 2 * N; ++i) {
    const int64_t positive = i < N ? i + N : i - N;
    std::vector<torch::Tensor> row = {sim[i][positive].unsqueeze(0)};
    for (int64_t k = 0; k < 2 * N; ++k)
      if (k != i && k != positive) row.push_back(sim[i][k].unsqueeze(0));
    rows.push_back(torch::cat(row).unsqueeze(0));
  }
  const torch::Tensor reference = torch::nn::functional::cross_entropy(
      torch::cat(rows) / 0.1, torch::zeros({2 * N}, torch::kLong));
  EXPECT_NEAR(InfoNce(a, b, 0.1).item<double>(), reference.item<double>(), 1e-5);
}

// loss.ssl > 0: the SSL branch (the reference's MLP) exists, takes the two
// views, adds its weighted InfoNCE to the total and trains; without views the
// term is absent; without the weight there is no branch.
TEST(TinyModel, SslBranchAddsItsInfoNceWhereTheWeightAsks) {
  for (const char* name : {"full", "ve"}) {
    SCOPED_TRACE(name);
    ModelConfig config = TinyConfig(kVariants.Parse(name, "variant"));
    EXPECT_TRUE(InstructFlip(config)->ssl_branch.is_empty());
    config.loss.ssl = 0.25;
    torch::manual_seed(31);
    InstructFlip model(config);
    ASSERT_FALSE(model->ssl_branch.is_empty());
    model->train();
    torch::manual_seed(32);
    InstructFlipExample in = MakeTinyInputs(model->config(), testutil::MixedSamples());
    const InstructFlipLosses without = *model->forward(in.inputs, in.targets).losses;
    EXPECT_FALSE(without.ssl.defined());
    in.inputs.ssl_views = torch::randn({2, 4, 3, config.vision.image_size, config.vision.image_size});
    const InstructFlipLosses with = *model->forward(in.inputs, in.targets).losses;
    ASSERT_TRUE(with.ssl.defined());
    EXPECT_TRUE(std::isfinite(with.ssl.item<double>()));
    EXPECT_GT(with.ssl.item<double>(), 0.0);
    with.total.backward();
    EXPECT_GT(model->ssl_branch->parameters()[0].grad().abs().max().item<double>(), 0.0);
  }
}

TEST(TinyModel, VariantsHaveTheirBranchesAndTrain) {
  const std::vector<VariantExpectation> variants = {
      {"full",
       {"visual_encoder", "content_Qformer", "style_Qformer", "t5_proj", "t5_model", "fusion", "cue_generator",
        "cls_layer"},
       true, true, true},
      {"no_llm",
       {"visual_encoder", "content_Qformer", "style_Qformer", "content_head", "style_head", "fusion",
        "cue_generator", "cls_layer"},
       true, true, true},
      {"ve", {"visual_encoder", "cls_layer"}, false, false, false},
      {"ve_cb", {"visual_encoder", "content_Qformer", "t5_proj", "t5_model", "fusion", "cls_layer"}, true, false,
       false},
      {"ve_cb_sb",
       {"visual_encoder", "content_Qformer", "style_Qformer", "t5_proj", "t5_model", "fusion", "cls_layer"}, true,
       true, false},
      {"mc", {"visual_encoder", "content_cls", "style_cls", "cls_layer"}, true, true, false},
  };
  for (const VariantExpectation& e : variants) {
    SCOPED_TRACE(e.name);
    const Variant variant = kVariants.Parse(e.name, "variant");
    InstructFlip model = MakeTinyModel(variant, 11);
    EXPECT_EQ(ChildNames(*model), e.children);
    model->train();
    torch::manual_seed(12);
    const InstructFlipExample in = MakeTinyInputs(model->config(), MixedSamples());
    const InstructFlipOutputs out = model->forward(in.inputs, in.targets);
    EXPECT_EQ(Sizes(out.logits), (std::vector<int64_t>{4, 2}));
    EXPECT_EQ(out.cue_map.defined(), e.cue);
    EXPECT_EQ(out.content_queries.defined(), model->config().has_content_branch() && variant != Variant::kMultiClass);
    ASSERT_TRUE(out.losses.has_value());
    const InstructFlipLosses& l = *out.losses;
    EXPECT_TRUE(l.classification.defined());
    EXPECT_EQ(l.content_lm.defined(), e.content_lm);
    EXPECT_EQ(l.style_lm.defined(), e.style_lm);
    EXPECT_EQ(l.cue.defined(), e.cue);
    ASSERT_TRUE(l.total.defined());
    EXPECT_TRUE(std::isfinite(l.total.item<double>()));
    EXPECT_GT(l.total.item<double>(), 0.0);
    // total = the variant's weighted sum.
    const LossWeights w = DefaultLossWeights(variant);
    double expected = w.classification * l.classification.item<double>();
    if (e.content_lm) expected += w.content_lm * l.content_lm.item<double>();
    if (e.style_lm) expected += w.style_lm * l.style_lm.item<double>();
    if (e.cue) expected += w.cue * l.cue.item<double>();
    EXPECT_NEAR(l.total.item<double>(), expected, 1e-5);
    l.total.backward();
    const torch::Tensor& g = model->cls_layer->layer->weight.grad();
    ASSERT_TRUE(g.defined());
    EXPECT_GT(g.abs().max().item<double>(), 0.0);
    EXPECT_GT(model->visual_encoder->embeddings->patch_embedding->weight.grad().abs().max().item<double>(), 0.0);
    if (!model->t5_model.is_empty()) {
      for (const auto& p : model->t5_model->parameters()) EXPECT_FALSE(p.grad().defined());
    }
  }
}

// --------------------------------------------------------------------------------------------
// The overfit test: a fixed batch of two live and two spoof faces must be
// learnt to 100% accuracy and near-zero LM losses, and then the frozen T5 must
// generate exactly the expected option strings from the content and style
// query states.
// Overfit settings. Measured on 2 cores (8 model seeds): the T5 pretraining
// reaches 0.005 in ~100 steps (~6 s); the model then needs 25-270 steps
// (~30 ms each) to reach the stopping point.
constexpr int kPretrainMaxSteps = 200;
constexpr double kPretrainLearningRate = 1e-2;
constexpr double kPretrainTargetLoss = 0.005;
constexpr double kOverfitLearningRate = 3e-3;
constexpr int kOverfitMaxSteps = 300;
// Training stops at 100% accuracy and both LM losses below 0.01: the asserted
// 0.1 is a token mean, and at 0.1 the one token that tells two options apart
// (the digit) can still lose the argmax, so generation would not yet be exact.
constexpr double kOverfitStopLoss = 0.01;

struct OverfitSample {
  TinySample sample;
  StyleQuestion question;
  const char* content_answer;
  const char* style_answer;
};

TEST(TinyModel, OverfitsFixedBatchAndGeneratesExactAnswers) {
  const auto start = std::chrono::steady_clock::now();
  // {spoof_type, illumination, environment, camera_quality, key}; the batcher
  // (seed 11) gives spoof key 0 the illumination question and key 3 the
  // environment question; live samples always get camera quality.
  const std::vector<OverfitSample> batch = {
      {{0, 0, 0, 0, 10}, StyleQuestion::kCameraQuality, "(1) Real face", "(1) Low"},
      {{0, 1, 1, 2, 20}, StyleQuestion::kCameraQuality, "(1) Real face", "(3) High"},
      {{2, 1, 0, 1, 0}, StyleQuestion::kIllumination, "(3) Poster", "(2) Strong"},
      {{8, 3, 1, 0, 3}, StyleQuestion::kEnvironment, "(9) Pad screen", "(2) Outdoor"},
  };
  InstructFlip model = MakeTinyModel(Variant::kFull, 21);
  ModelConfig warmup_config = model->config();
  warmup_config.t5_warmup.steps = kPretrainMaxSteps;
  warmup_config.t5_warmup.lr = kPretrainLearningRate;
  warmup_config.t5_warmup.target_loss = kPretrainTargetLoss;
  const T5WarmupResult warmup = WarmUpT5(model->t5_model, warmup_config, *GetTinyTokenizers().t5);
  const double pretrain_loss = warmup.loss;
  const int pretrain_steps = warmup.steps;
  std::cout << "[ overfit  ] T5 pretraining: loss " << pretrain_loss << " after " << pretrain_steps << " steps, "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
  ASSERT_LT(pretrain_loss, 0.05) << "the stand-in T5 did not learn the options";
  std::vector<torch::Tensor> frozen_t5;
  for (const auto& p : model->t5_model->parameters()) {
    ASSERT_FALSE(p.requires_grad());
    frozen_t5.push_back(p.detach().clone());
  }
  std::vector<TinySample> samples;
  for (const auto& s : batch) samples.push_back(s.sample);
  torch::manual_seed(22);
  const InstructFlipExample in = MakeTinyInputs(model->config(), samples);
  {
    InstructionBatcher batcher = testutil::MakeTinyBatcher(model->config());
    for (const auto& s : batch)
      ASSERT_EQ(batcher.TrainingQuestion(StyleQuestionRule::kReference, s.sample.spoof_type > 0, s.sample.key),
                s.question);
  }

  torch::optim::AdamW optimizer(model->trainable_parameters(),
                                torch::optim::AdamWOptions(kOverfitLearningRate).weight_decay(0.0));
  model->train();
  int steps = 0;
  double content_lm = 0, style_lm = 0, accuracy = 0;
  for (; steps < kOverfitMaxSteps; ++steps) {
    optimizer.zero_grad();
    const InstructFlipOutputs out = model->forward(in.inputs, in.targets);
    content_lm = out.losses->content_lm.item<double>();
    style_lm = out.losses->style_lm.item<double>();
    accuracy = out.logits.argmax(1).eq(in.targets.label).to(torch::kDouble).mean().item<double>();
    if (accuracy == 1.0 && content_lm < kOverfitStopLoss && style_lm < kOverfitStopLoss) break;
    out.losses->total.backward();
    optimizer.step();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ overfit  ] " << steps << " steps, " << seconds << " s: accuracy " << accuracy << ", content LM "
            << content_lm << ", style LM " << style_lm << "\n";
  EXPECT_EQ(accuracy, 1.0);
  EXPECT_LT(content_lm, 0.1);
  EXPECT_LT(style_lm, 0.1);
  const std::vector<torch::Tensor> t5_after = model->t5_model->parameters();
  for (size_t i = 0; i < t5_after.size(); ++i) EXPECT_TRUE(torch::equal(t5_after[i], frozen_t5[i])) << "T5 moved";

  model->eval();
  torch::NoGradGuard no_grad;
  const InstructFlipOutputs out = model->forward(in.inputs);
  EXPECT_TRUE(torch::equal(out.logits.argmax(1), in.targets.label));
  const T5Tokenizer& t5 = *GetTinyTokenizers().t5;
  const torch::Tensor content = model->GenerateAnswers(out.content_queries, in.inputs.content_question_t5, t5.eos_id());
  const torch::Tensor style = model->GenerateAnswers(out.style_queries, in.inputs.style_question_t5, t5.eos_id());
  auto decode = [&](const torch::Tensor& ids, int64_t row) {
    const torch::Tensor r = ids[row].contiguous();
    return t5.Decode(std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()));
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(decode(content, i), batch[i].content_answer) << "sample " << i;
    EXPECT_EQ(decode(style, i), batch[i].style_answer) << "sample " << i;
  }
}

// --------------------------------------------------------------------------------------------
// The paper's sizes (default ModelConfig) at batch 1 on the CPU: parameter
// counts against Hugging Face's models and the architecture, and forward shapes.
int64_t LinearParams(int64_t in, int64_t out, bool bias = true) { return in * out + (bias ? out : 0); }
int64_t LayerNormParams(int64_t d) { return 2 * d; }

TEST(BaseModel, ParameterCountsAndForwardShapes) {
  const auto start = std::chrono::steady_clock::now();
  ModelConfig c;  // base: CLIP ViT-B/16, 2-layer Q-Formers, FLAN-T5-base
  c.qformer.vocab_size = 30523;
  c.t5.vocab_size = 32128;
  torch::manual_seed(31);
  InstructFlip model(c);
  model->eval();

  const int64_t vision = testutil::CountParameters(*model->visual_encoder);
  const int64_t t5 = testutil::CountParameters(*model->t5_model);
  const int64_t qformer = testutil::CountParameters(*model->content_Qformer);
  std::cout << "[ params   ] vision " << vision << ", T5 " << t5 << ", Q-Former " << qformer << " (each), total "
            << testutil::CountParameters(*model) << "\n";
  // Hugging Face CLIPVisionModel (openai/clip-vit-base-patch16): 85,798,656.
  EXPECT_LT(std::abs(vision - 85798656.0) / 85798656.0, 0.01) << vision;
  // Exactly, from the architecture: class embedding, patch conv (no bias), 197
  // positions, pre/post LayerNorm, 12 x (q,k,v,o + 2 LN + MLP 768-3072-768).
  const int64_t W = 768;
  const int64_t clip_layer = 4 * LinearParams(W, W) + 2 * LayerNormParams(W) + LinearParams(W, 4 * W) + LinearParams(4 * W, W);
  EXPECT_EQ(vision, W + W * 3 * 16 * 16 + 197 * W + 2 * LayerNormParams(W) + 12 * clip_layer);
  // FLAN-T5-base with its untied lm_head: 247,577,856.
  EXPECT_LT(std::abs(t5 - 247577856.0) / 247577856.0, 0.01) << t5;
  EXPECT_EQ(t5, 247577856);
  // Q-Former: embeddings (30523 words, 512 positions, LN), 32 queries, layer 0
  // with cross-attention, layer 1 without; each layer: self-attention (q,k,v,
  // dense, LN), text FFN and query FFN (768-3072-768 + LN).
  const int64_t attention = 4 * LinearParams(W, W) + LayerNormParams(W);
  const int64_t ffn = LinearParams(W, 3072) + LinearParams(3072, W) + LayerNormParams(W);
  const int64_t expected_qformer = 30523 * W + 512 * W + LayerNormParams(W) + 32 * W  // embeddings, queries
                                   + (2 * attention + 2 * ffn)                         // layer 0
                                   + (attention + 2 * ffn);                            // layer 1
  EXPECT_EQ(qformer, expected_qformer);
  EXPECT_EQ(testutil::CountParameters(*model->style_Qformer), expected_qformer);
  // Fusion: Wqkv, q_ln, k_ln, out_proj; cross-attention norms, to_q, to_kv,
  // null_kv, to_out (Linear + LN); feed-forward LN + 768-2048-768.
  const int64_t fusion = LinearParams(W, 3 * W) + 2 * LayerNormParams(W) + LinearParams(W, W) + 2 * LayerNormParams(W) +
                         LinearParams(W, 1024, false) + LinearParams(W, 2048, false) + 2 * 64 + LinearParams(1024, W, false) +
                         LayerNormParams(W) + LayerNormParams(W) + LinearParams(W, 2048) + LinearParams(2048, W);
  EXPECT_EQ(testutil::CountParameters(*model->fusion), fusion);
  EXPECT_EQ(testutil::CountParameters(*model->cls_layer), LinearParams(W, 2));
  EXPECT_EQ(testutil::CountParameters(*model->cue_generator), W * 32 * 9 + 32 + 32 * 3 * 9 + 3);
  EXPECT_EQ(testutil::CountParameters(*model->t5_proj), LinearParams(W, W));
  EXPECT_EQ(testutil::CountParameters(*model),
            vision + 2 * expected_qformer + t5 + fusion + LinearParams(W, 2) + (W * 32 * 9 + 32 + 32 * 3 * 9 + 3) +
                LinearParams(W, W));

  torch::manual_seed(32);
  const InstructFlipExample in = MakeTinyInputs(c, {{3, 1, 0, 2, 0}});  // tiny tokenizers' ids fit any vocabulary
  torch::NoGradGuard no_grad;
  const VisionFeatures features = model->visual_encoder(in.inputs.images);
  EXPECT_EQ(Sizes(features.content), (std::vector<int64_t>{1, 197, 768}));
  EXPECT_EQ(Sizes(features.style), (std::vector<int64_t>{1, 24, 768}));
  const InstructFlipOutputs out = model->forward(in.inputs, in.targets);
  EXPECT_EQ(Sizes(out.logits), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Sizes(out.cue_map), (std::vector<int64_t>{1, 3, 14, 14}));
  EXPECT_EQ(Sizes(out.content_queries), (std::vector<int64_t>{1, 32, 768}));
  EXPECT_EQ(Sizes(out.style_queries), (std::vector<int64_t>{1, 32, 768}));
  EXPECT_TRUE(std::isfinite(out.losses->total.item<double>()));
  EXPECT_TRUE(std::isfinite(out.losses->content_lm.item<double>()));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ base     ] build + forward " << seconds << " s\n";
}

}  // namespace
}  // namespace instructflip
