// Parity with Hugging Face's own modules. tests/gpu/make_hf_fixtures.py (run on
// a host with transformers; none is installed here) builds a tiny random
// CLIPVisionModel, BertModel and T5ForConditionalGeneration, saves them with
// save_pretrained and records inputs and transformers' outputs. Here our
// modules are built with the manifest's configuration, the checkpoints go
// through the loaders BuildModel uses for `pretrained:` (LoadClipVision,
// LoadBertIntoQFormers, LoadT5, which map Hugging Face's key names to ours),
// and our outputs must match, in fp32, elementwise
//   |ours - transformers| <= 1e-5 + 1e-4 * |transformers|   (torch::allclose)
// Both sides compute the same functions with different kernels and summation
// orders (fused attention on LibTorch >= 2), a few ulps per operation; a wrong
// key mapping, activation, scale or mask is off by orders of magnitude more.
//
// The fixtures are read from $INSTRUCTFLIP_HF_FIXTURES, else tests/fixtures/hf;
// without a manifest.json there the executable fails naming the directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/attention.h"
#include "model/instruct_flip.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "tests/model/tiny_model.h"

namespace instructflip {
namespace {

using Json = nlohmann::json;

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

std::string FixtureDir() {
  const char* dir = std::getenv("INSTRUCTFLIP_HF_FIXTURES");
  return dir != nullptr && *dir != '\0' ? dir : INSTRUCTFLIP_HF_FIXTURES_DIR;
}

void Require(bool ok, const std::string& message) {
  if (!ok) throw std::runtime_error("manifest.json: " + message);
}

// Our configuration equal to the manifest's models; the parts the fixtures do
// not cover (fusion, heads) are small and random. Fails where a Hugging Face
// setting has no counterpart in our modules.
ModelConfig ParityConfig(const Json& manifest) {
  const Json& clip = manifest.at("clip").at("config");
  const Json& bert = manifest.at("bert").at("config");
  const Json& t5 = manifest.at("t5").at("config");
  ModelConfig c;
  c.name = "hf-parity";

  Require(clip.at("hidden_act") == "quick_gelu", "CLIP hidden_act must be quick_gelu (our CLIPMlp's)");
  Require(clip.at("num_channels") == 3, "CLIP num_channels must be 3");
  Require(clip.at("intermediate_size").get<int>() == 4 * clip.at("hidden_size").get<int>(),
          "CLIP intermediate_size must be 4 x hidden_size (our CLIPMlp's width)");
  c.vision.image_size = clip.at("image_size");
  c.vision.patch_size = clip.at("patch_size");
  c.vision.width = clip.at("hidden_size");
  c.vision.layers = clip.at("num_hidden_layers");
  c.vision.heads = clip.at("num_attention_heads");
  c.vision.layer_norm_eps = clip.at("layer_norm_eps");

  Require(bert.at("hidden_act") == "gelu", "BERT hidden_act must be gelu (exact, our BertIntermediate's)");
  c.qformer.hidden = bert.at("hidden_size");
  c.qformer.heads = bert.at("num_attention_heads");
  c.qformer.intermediate = bert.at("intermediate_size");
  c.qformer.layers = manifest.at("bert").at("qformer_layers");
  Require(c.qformer.layers <= bert.at("num_hidden_layers").get<int>(), "qformer_layers exceeds BERT's layers");
  c.qformer.vocab_size = bert.at("vocab_size").get<int>() + 1;  // + BLIP-2's [DEC]
  c.qformer.max_positions = bert.at("max_position_embeddings");
  c.qformer.layer_norm_eps = bert.at("layer_norm_eps");
  c.qformer.num_queries = 4;
  c.qformer.dropout = 0.0;

  Require(t5.at("feed_forward_proj") == "gated-gelu", "T5 feed_forward_proj must be gated-gelu (FLAN-T5's)");
  c.t5.vocab_size = t5.at("vocab_size");
  c.t5.d_model = t5.at("d_model");
  c.t5.d_kv = t5.at("d_kv");
  c.t5.d_ff = t5.at("d_ff");
  c.t5.encoder_layers = t5.at("num_layers");
  c.t5.decoder_layers = t5.at("num_decoder_layers");
  c.t5.heads = t5.at("num_heads");
  c.t5.relative_buckets = t5.at("relative_attention_num_buckets");
  c.t5.relative_max_distance = t5.at("relative_attention_max_distance");
  c.t5.layer_norm_eps = t5.at("layer_norm_epsilon");
  c.t5.tie_word_embeddings = t5.at("tie_word_embeddings");
  c.t5.feed_forward_activation = manifest.at("t5").at("feed_forward_activation");

  testutil::SetTinyFusionAndCue(c);
  return c;
}

// The model with all three checkpoints loaded, as BuildModel does for
// `pretrained:` paths (BuildModel itself also builds tokenizers, whose
// vocabularies would have to fit the fixtures').
struct Loaded {
  InstructFlip model{nullptr};
  std::vector<LoadReport> reports;  // clip, bert, t5
};

Loaded LoadAll(const ModelConfig& config, const std::string& dir) {
  torch::manual_seed(0);
  Loaded out;
  out.model = InstructFlip(config);
  out.model->eval();
  out.reports.push_back(LoadClipVision(*out.model, dir + "/clip/model.safetensors"));
  out.reports.push_back(LoadBertIntoQFormers(*out.model, dir + "/bert/model.safetensors"));
  out.reports.push_back(LoadT5(*out.model, dir + "/t5/model.safetensors"));
  return out;
}

// torch::allclose(ours, expected, kRtol, kAtol), reporting the worst element;
// the largest difference is printed either way, to see the margin.
void ExpectClose(const torch::Tensor& ours, const torch::Tensor& expected, const std::string& what) {
  ASSERT_EQ(ours.sizes(), expected.sizes()) << what;
  const torch::Tensor a = ours.detach().to(torch::kDouble).flatten();
  const torch::Tensor e = expected.to(torch::kDouble).flatten();
  const torch::Tensor diff = (a - e).abs();
  const torch::Tensor excess = diff - (kAtol + kRtol * e.abs());
  const int64_t worst = excess.argmax().item<int64_t>();
  std::cout << "[ parity   ] " << what << ": max |diff| " << diff.max().item<double>() << " over " << e.numel()
            << " values (max |value| " << e.abs().max().item<double>() << ")\n";
  EXPECT_LE(excess[worst].item<double>(), 0.0)
      << what << ": element " << worst << " is " << a[worst].item<double>() << ", transformers gives "
      << e[worst].item<double>() << " (tolerance 1e-5 + 1e-4 x |value|)";
}

class HfParity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FixtureDir();
    std::ifstream in(dir_ + "/manifest.json");
    manifest_ = Json::parse(in);
    config_ = ParityConfig(manifest_);
    loaded_ = LoadAll(config_, dir_);
  }

  std::unique_ptr<SafetensorsFile> Io(const std::string& component) const {
    return SafetensorsFile::Open(dir_ + "/" + component + "/io.safetensors");
  }

  std::string dir_;
  Json manifest_;
  ModelConfig config_;
  Loaded loaded_;
};

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST_F(HfParity, CheckpointsFillEveryPretrainedParameter) {
  const LoadReport& clip = loaded_.reports[0];
  EXPECT_TRUE(clip.missing.empty()) << clip.Summary();
  EXPECT_TRUE(clip.unexpected.empty()) << clip.Summary();

  // BERT fills everything but BLIP-2's additions (cross-attention, query
  // feed-forward, query tokens) in both Q-Formers; its pooler, token types and
  // the layer beyond qformer_layers are skipped knowingly.
  const LoadReport& bert = loaded_.reports[1];
  EXPECT_TRUE(bert.unexpected.empty()) << bert.Summary();
  for (const std::string& name : bert.missing)
    EXPECT_TRUE(name.find("crossattention") != std::string::npos || name.find("_query.") != std::string::npos ||
                name.find("query_tokens") != std::string::npos)
        << name << " was not filled from BERT\n" << bert.Summary();
  for (const char* prefix : {"content_Qformer.", "style_Qformer."})
    EXPECT_TRUE(Contains(bert.loaded, std::string(prefix) + "embeddings.word_embeddings.weight")) << bert.Summary();
  EXPECT_TRUE(Contains(bert.ignored, "embeddings.token_type_embeddings.weight")) << bert.Summary();
  const std::string beyond = "encoder.layer." + std::to_string(config_.qformer.layers) + ".output.dense.weight";
  EXPECT_TRUE(Contains(bert.ignored, beyond)) << bert.Summary();

  const LoadReport& t5 = loaded_.reports[2];  // LoadT5 itself refuses a checkpoint that misses any
  EXPECT_TRUE(t5.missing.empty()) << t5.Summary();
  EXPECT_TRUE(t5.unexpected.empty()) << t5.Summary();
  EXPECT_TRUE(Contains(t5.loaded, "t5_model.lm_head.weight")) << t5.Summary();
}

// Hugging Face's last_hidden_state stops before post_layernorm, which it applies
// to the class token only (pooler_output); our `content` is post_layernorm over
// every token and `style` the token mean and (unbiased) std of every layer's
// output, here computed from transformers' own per-layer outputs.
TEST_F(HfParity, ClipVisionMatchesClipVisionModel) {
  torch::NoGradGuard no_grad;
  const auto io = Io("clip");
  const VisionFeatures ours = loaded_.model->visual_encoder(io->Get("pixel_values"));
  ExpectClose(ours.content, io->Get("post_layernorm_all_tokens"), "CLIP content (post_layernorm, all tokens)");
  ExpectClose(ours.content.select(1, 0), io->Get("pooler_output"), "CLIP class token vs pooler_output");
  const torch::Tensor layers = io->Get("layer_hidden_states");  // (L, B, 1 + P, W)
  ASSERT_EQ(layers.size(0), config_.vision.layers);
  std::vector<torch::Tensor> statistics;  // mean_1, std_1, mean_2, std_2, ...
  for (int64_t l = 0; l < layers.size(0); ++l) {
    statistics.push_back(layers[l].mean(1));
    statistics.push_back(layers[l].std(1, /*unbiased=*/true));
  }
  ExpectClose(ours.style, torch::stack(statistics, 1), "CLIP style (per-layer token mean, std)");
}

// What of the Q-Former BertModel can check: its text path. With no query
// tokens, the Q-Former's embeddings are LayerNorm(word + position) of the text
// (BertModel's with the token-type table zeroed by the generator: BLIP-2 has
// none), and each layer's text positions go through self-attention with the
// padding mask and the text feed-forward (intermediate/output): a BERT layer.
// QFormerImpl::forward returns only the query states, so the layers' parts
// are driven here as QFormerLayerImpl::forward drives them for text positions.
// Cross-attention and the query feed-forward are BLIP-2's, freshly initialised,
// and not in BERT. Compared after the embeddings and after each of the first
// qformer.layers BERT layers, padded positions included, in both Q-Formers.
TEST_F(HfParity, QFormerTextPathMatchesBertModel) {
  torch::NoGradGuard no_grad;
  const auto io = Io("bert");
  const torch::Tensor ids = io->Get("input_ids"), keep = io->Get("attention_mask");
  const torch::Tensor expected = io->Get("hidden_states");  // (1 + BERT layers, B, T, H)
  ASSERT_GT(expected.size(0), config_.qformer.layers);
  const int64_t B = ids.size(0);
  const torch::Tensor mask = PaddingMask(keep, torch::kFloat32);
  const std::vector<std::pair<std::string, QFormer>> qformers = {{"content_Qformer", loaded_.model->content_Qformer},
                                                                 {"style_Qformer", loaded_.model->style_Qformer}};
  for (auto [name, qformer] : qformers) {
    torch::Tensor x = qformer->embeddings(ids, torch::zeros({B, 0, config_.qformer.hidden}));
    ExpectClose(x, expected[0], name + " embeddings");
    for (int i = 0; i < config_.qformer.layers; ++i) {
      const auto layer = qformer->encoder->layer->ptr<QFormerLayerImpl>(i);
      const torch::Tensor attended = layer->attention(x, x, mask);
      x = layer->output(layer->intermediate(attended), attended);
      ExpectClose(x, expected[i + 1], name + " layer " + std::to_string(i));
    }
  }
}

// InstructFLIP feeds the T5 encoder embeddings (the shared table's, after the
// projected queries), so the encoder is driven with shared(input_ids).
TEST_F(HfParity, T5EncoderMatchesT5ForConditionalGeneration) {
  torch::NoGradGuard no_grad;
  const auto io = Io("t5");
  T5Model& t5 = loaded_.model->t5_model;
  const torch::Tensor encoded = t5->Encode(t5->shared(io->Get("input_ids")), io->Get("attention_mask"));
  ExpectClose(encoded, io->Get("encoder_last_hidden_state"), "T5 encoder_last_hidden_state");
}

// Teacher-forced decoding from our own encoder output: the decoder's causal
// self-attention with its relative buckets, cross-attention to the padded
// encoder output, and the untied lm_head without the d_model^-0.5 rescale.
TEST_F(HfParity, T5LogitsMatchT5ForConditionalGeneration) {
  torch::NoGradGuard no_grad;
  const auto io = Io("t5");
  T5Model& t5 = loaded_.model->t5_model;
  const torch::Tensor keep = io->Get("attention_mask"), decoder_ids = io->Get("decoder_input_ids");
  const torch::Tensor encoded = t5->Encode(t5->shared(io->Get("input_ids")), keep);
  const torch::Tensor logits = t5->Decode(decoder_ids, torch::ones_like(decoder_ids), encoded, keep);
  ExpectClose(logits, io->Get("logits"), "T5 logits");
}

// The same checkpoint with FLAN-T5's own tanh GELU ("gelu_new"), which the
// reference, and configs/model/base.yaml, replace with exact GELU.
TEST_F(HfParity, T5WithGeluNewMatchesFlanActivation) {
  torch::NoGradGuard no_grad;
  ModelConfig config = config_;
  config.t5.feed_forward_activation = "gelu_new";
  torch::manual_seed(0);
  InstructFlip model(config);
  model->eval();
  LoadT5(*model, dir_ + "/t5/model.safetensors");
  const auto io = Io("t5");
  T5Model& t5 = model->t5_model;
  const torch::Tensor keep = io->Get("attention_mask"), decoder_ids = io->Get("decoder_input_ids");
  const torch::Tensor encoded = t5->Encode(t5->shared(io->Get("input_ids")), keep);
  ExpectClose(encoded, io->Get("encoder_last_hidden_state_gelu_new"), "T5 (gelu_new) encoder_last_hidden_state");
  const torch::Tensor logits = t5->Decode(decoder_ids, torch::ones_like(decoder_ids), encoded, keep);
  ExpectClose(logits, io->Get("logits_gelu_new"), "T5 (gelu_new) logits");
}

}  // namespace
}  // namespace instructflip

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string dir = instructflip::FixtureDir();
  if (!std::filesystem::exists(dir + "/manifest.json")) {
    std::cerr << "hf_parity_test: no Hugging Face fixtures in '" << dir << "' (no manifest.json there).\n"
              << "Write them on a host with transformers: python3 tests/gpu/make_hf_fixtures.py DIR,\n"
              << "then run with INSTRUCTFLIP_HF_FIXTURES=DIR (the default is tests/fixtures/hf).\n";
    return 1;
  }
  return RUN_ALL_TESTS();
}
