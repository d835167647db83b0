// Weight loading: our own checkpoints round-trip exactly; Hugging Face / OpenAI
// checkpoints (built here with their key names from a tiny model) land in the
// right parameters; bad files and mismatches are errors naming the key.
#include "model/weights.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/instructions.h"
#include "model/tokenizers.h"
#include "model/wordpiece_tokenizer.h"
#include "tests/common/test_util.h"
#include "tests/model/tiny_model.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;
using testutil::TinyConfig;

std::map<std::string, torch::Tensor> Params(torch::nn::Module& m, const std::string& prefix = "") {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : m.named_parameters(true))
    if (item.key().rfind(prefix, 0) == 0) out[item.key()] = item.value().detach().clone();
  return out;
}

InstructFlip MakeModel(uint64_t seed, Variant variant = Variant::kFull) {
  torch::manual_seed(seed);
  InstructFlip model(TinyConfig(variant));
  model->eval();
  return model;
}

// The model's parameters under `prefix`, renamed for a foreign checkpoint.
std::vector<std::pair<std::string, torch::Tensor>> Renamed(
    InstructFlip& model, const std::string& prefix, const std::function<std::string(const std::string&)>& rename) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, tensor] : Params(*model, prefix)) out.push_back({rename(name.substr(prefix.size())), tensor});
  return out;
}

void ExpectSameUnder(InstructFlip& a, InstructFlip& b, const std::string& prefix) {
  const auto pa = Params(*a, prefix), pb = Params(*b, prefix);
  ASSERT_FALSE(pa.empty());
  for (const auto& [name, tensor] : pa) EXPECT_TRUE(torch::equal(tensor, pb.at(name))) << name;
}

TEST(Weights, OwnCheckpointRoundTripGivesIdenticalOutputs) {
  TempDir tmp;
  InstructFlip a = MakeModel(1), b = MakeModel(2);
  SaveModelWeights(*a, tmp / "m.safetensors", {{"config", "tiny"}});
  LoadModelWeights(*b, tmp / "m.safetensors");
  ExpectSameUnder(a, b, "");
  torch::manual_seed(3);
  const torch::Tensor images = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(a->visual_encoder(images).content, b->visual_encoder(images).content));
  EXPECT_EQ(SafetensorsFile::Open(tmp / "m.safetensors")->metadata().at("config"), "tiny");
}

TEST(Weights, OwnCheckpointOfAnotherConfigIsRefused) {
  TempDir tmp;
  InstructFlip a = MakeModel(1);
  SaveModelWeights(*a, tmp / "m.safetensors");
  ModelConfig other = TinyConfig();
  other.cue_hidden = 16;
  InstructFlip b(other);
  const std::string error = ErrorOf([&] { LoadModelWeights(*b, tmp / "m.safetensors"); });
  EXPECT_NE(error.find("cue_generator.conv1.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("another model config"), std::string::npos) << error;
  InstructFlip ve = MakeModel(1, Variant::kVisionOnly);
  const std::string unexpected = ErrorOf([&] { LoadModelWeights(*ve, tmp / "m.safetensors"); });
  EXPECT_NE(unexpected.find("unexpected tensor"), std::string::npos) << unexpected;
}

TEST(Weights, HuggingFaceClipVisionNamesLoad) {
  TempDir tmp;
  InstructFlip source = MakeModel(1), target = MakeModel(2);
  auto tensors = Renamed(source, "visual_encoder.", [](const std::string& n) { return "vision_model." + n; });
  tensors.push_back({"vision_model.embeddings.position_ids", torch::arange(17).unsqueeze(0)});
  tensors.push_back({"text_model.embeddings.token_embedding.weight", torch::zeros({4, 4})});
  tensors.push_back({"logit_scale", torch::ones({})});
  SaveSafetensors(tmp / "clip.safetensors", tensors);
  const LoadReport report = LoadClipVision(*target, tmp / "clip.safetensors");
  ExpectSameUnder(source, target, "visual_encoder.");
  EXPECT_TRUE(report.missing.empty()) << report.Summary();
  EXPECT_TRUE(report.unexpected.empty()) << report.Summary();
  EXPECT_EQ(report.ignored.size(), 3u);
}

TEST(Weights, OpenAiClipNamesLoadWithFusedProjectionsSplit) {
  TempDir tmp;
  InstructFlip source = MakeModel(1), target = MakeModel(2);
  auto p = Params(*source, "visual_encoder.");
  const std::string v = "visual_encoder.";
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"visual.conv1.weight", p[v + "embeddings.patch_embedding.weight"]},
      {"visual.class_embedding", p[v + "embeddings.class_embedding"]},
      {"visual.positional_embedding", p[v + "embeddings.position_embedding.weight"]},
      {"visual.ln_pre.weight", p[v + "pre_layrnorm.weight"]},
      {"visual.ln_pre.bias", p[v + "pre_layrnorm.bias"]},
      {"visual.ln_post.weight", p[v + "post_layernorm.weight"]},
      {"visual.ln_post.bias", p[v + "post_layernorm.bias"]},
      {"visual.proj", torch::zeros({32, 16})},
  };
  for (int i = 0; i < 2; ++i) {
    const std::string ours = v + "encoder.layers." + std::to_string(i) + ".";
    const std::string theirs = "visual.transformer.resblocks." + std::to_string(i) + ".";
    for (const char* kind : {"weight", "bias"}) {
      const std::string k = kind;
      tensors.push_back({theirs + "attn.in_proj_" + k,
                         torch::cat({p[ours + "self_attn.q_proj." + k], p[ours + "self_attn.k_proj." + k],
                                     p[ours + "self_attn.v_proj." + k]})});
      tensors.push_back({theirs + "attn.out_proj." + k, p[ours + "self_attn.out_proj." + k]});
      tensors.push_back({theirs + "ln_1." + k, p[ours + "layer_norm1." + k]});
      tensors.push_back({theirs + "ln_2." + k, p[ours + "layer_norm2." + k]});
      tensors.push_back({theirs + "mlp.c_fc." + k, p[ours + "mlp.fc1." + k]});
      tensors.push_back({theirs + "mlp.c_proj." + k, p[ours + "mlp.fc2." + k]});
    }
  }
  SaveSafetensors(tmp / "openai.safetensors", tensors);
  const LoadReport report = LoadClipVision(*target, tmp / "openai.safetensors");
  ExpectSameUnder(source, target, "visual_encoder.");
  EXPECT_TRUE(report.missing.empty()) << report.Summary();
  EXPECT_EQ(report.ignored, std::vector<std::string>{"visual.proj"});
}

TEST(Weights, BertInitialisesBothQFormersButNotCrossAttentionOrQueries) {
  TempDir tmp;
  InstructFlip source = MakeModel(1), target = MakeModel(2);
  const auto before = Params(*target, "content_Qformer.");
  // bert-base-uncased style: "bert." prefix, one row less ([DEC] is BLIP-2's),
  // old gamma/beta names, a pooler, an MLM head and a layer beyond the Q-Former's.
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : Params(*source, "content_Qformer.")) {
    std::string n = name.substr(std::string("content_Qformer.").size());
    if (n.find("crossattention") != std::string::npos || n.find("_query") != std::string::npos || n == "query_tokens")
      continue;  // BERT has none of these
    torch::Tensor t = tensor;
    if (n == "embeddings.word_embeddings.weight") t = t.narrow(0, 0, t.size(0) - 1);
    if (n == "embeddings.LayerNorm.weight") n = "embeddings.LayerNorm.gamma";
    tensors.push_back({"bert." + n, t});
  }
  tensors.push_back({"bert.encoder.layer.5.output.dense.bias", torch::zeros({32})});
  tensors.push_back({"bert.pooler.dense.bias", torch::zeros({32})});
  tensors.push_back({"cls.predictions.bias", torch::zeros({8})});
  tensors.push_back({"bert.embeddings.token_type_embeddings.weight", torch::zeros({2, 32})});
  SaveSafetensors(tmp / "bert.safetensors", tensors);
  const LoadReport report = LoadBertIntoQFormers(*target, tmp / "bert.safetensors");
  EXPECT_TRUE(report.unexpected.empty()) << report.Summary();
  EXPECT_EQ(report.ignored.size(), 4u) << report.Summary();
  const auto src = Params(*source, "content_Qformer."), dst = Params(*target, "content_Qformer.");
  const auto style = Params(*target, "style_Qformer.");
  for (const auto& [name, tensor] : src) {
    const bool fresh = name.find("crossattention") != std::string::npos || name.find("_query") != std::string::npos ||
                       name.find("query_tokens") != std::string::npos;
    if (name.find("word_embeddings") != std::string::npos) {
      const int64_t rows = tensor.size(0) - 1;  // [DEC] keeps its initialisation
      EXPECT_TRUE(torch::equal(dst.at(name).narrow(0, 0, rows), tensor.narrow(0, 0, rows)));
      EXPECT_TRUE(torch::equal(dst.at(name)[rows], before.at(name)[rows]));
    } else if (fresh) {
      EXPECT_TRUE(torch::equal(dst.at(name), before.at(name))) << name << " should stay as initialised";
      EXPECT_NE(std::find(report.missing.begin(), report.missing.end(), name), report.missing.end()) << name;
    } else {
      EXPECT_TRUE(torch::equal(dst.at(name), tensor)) << name;
      const std::string style_name = "style_Qformer." + name.substr(std::string("content_Qformer.").size());
      EXPECT_TRUE(torch::equal(style.at(style_name), tensor)) << style_name;
    }
  }
}

TEST(Weights, T5LoadsHuggingFaceNamesAndRequiresEveryTensor) {
  TempDir tmp;
  InstructFlip source = MakeModel(1), target = MakeModel(2);
  auto tensors = Renamed(source, "t5_model.", [](const std::string& n) { return n; });
  tensors.push_back({"encoder.embed_tokens.weight", Params(*source)["t5_model.shared.weight"]});
  SaveSafetensors(tmp / "t5.safetensors", tensors);
  const LoadReport report = LoadT5(*target, tmp / "t5.safetensors");
  ExpectSameUnder(source, target, "t5_model.");
  EXPECT_TRUE(report.missing.empty()) << report.Summary();
  EXPECT_EQ(report.ignored, std::vector<std::string>{"encoder.embed_tokens.weight"});

  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](const auto& t) { return t.first == "decoder.block.1.layer.2.DenseReluDense.wo.weight"; }),
                tensors.end());
  SaveSafetensors(tmp / "t5_partial.safetensors", tensors);
  const std::string error = ErrorOf([&] { LoadT5(*target, tmp / "t5_partial.safetensors"); });
  EXPECT_NE(error.find("t5_model.decoder.block.1.layer.2.DenseReluDense.wo.weight"), std::string::npos) << error;
}

// Fixture directories laid out as the Hugging Face hub lays them out: config.json
// beside model.safetensors (CLIPModel nests the vision settings), or the shards an
// index maps tensors to (FLAN-T5 large/xl), and the tokenizer files beside them.
TEST(Weights, HuggingFaceModelDirectoriesLoadAsTheHubLaysThemOut) {
  TempDir tmp;
  InstructFlip source = MakeModel(1), target = MakeModel(2);
  const ModelConfig& c = source->config();
  auto write = [&](const std::string& path, const std::string& text) { std::ofstream(path) << text; };
  // CLIP: a CLIPModel directory.
  std::filesystem::create_directories(tmp / "clip");
  SaveSafetensors(tmp / "clip/model.safetensors",
                  Renamed(source, "visual_encoder.", [](const std::string& n) { return "vision_model." + n; }));
  const std::string clip_config =
      R"({"model_type": "clip", "text_config": {"hidden_size": 512}, "vision_config": {"hidden_size": 32,
          "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32,
          "patch_size": 8, "hidden_act": "quick_gelu"}})";
  write(tmp / "clip/config.json", clip_config);
  const LoadReport clip = LoadClipVision(*target, tmp / "clip");
  ExpectSameUnder(source, target, "visual_encoder.");
  EXPECT_TRUE(clip.missing.empty()) << clip.Summary();
  // A field of another size is named with its value and ours, before any tensor is read.
  std::string wider = clip_config;
  wider.replace(wider.find("\"hidden_size\": 32"), 17, "\"hidden_size\": 64");
  write(tmp / "clip/config.json", wider);
  std::string error = ErrorOf([&] { LoadClipVision(*target, tmp / "clip"); });
  EXPECT_NE(error.find("config.json: 'vision_config.hidden_size' is 64 but the model configuration has vision.width = 32"),
            std::string::npos) << error;
  write(tmp / "clip/config.json", "{not json");
  error = ErrorOf([&] { LoadClipVision(*target, tmp / "clip"); });
  EXPECT_NE(error.find("clip/config.json: not valid JSON"), std::string::npos) << error;
  // T5: two shards and their index; the config's defaults are T5Config's (null = absent).
  std::filesystem::create_directories(tmp / "t5");
  auto t5 = Renamed(source, "t5_model.", [](const std::string& n) { return n; });
  const size_t half = t5.size() / 2;
  const std::vector<std::pair<std::string, torch::Tensor>> first(t5.begin(), t5.begin() + half),
      second(t5.begin() + half, t5.end());
  SaveSafetensors(tmp / "t5/model-00001-of-00002.safetensors", first);
  SaveSafetensors(tmp / "t5/model-00002-of-00002.safetensors", second);
  nlohmann::json index{{"metadata", {{"total_size", 0}}}};
  for (const auto& [name, tensor] : first) index["weight_map"][name] = "model-00001-of-00002.safetensors";
  for (const auto& [name, tensor] : second) index["weight_map"][name] = "model-00002-of-00002.safetensors";
  write(tmp / "t5/model.safetensors.index.json", index.dump());
  write(tmp / "t5/config.json",
        R"({"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
            "num_decoder_layers": null, "vocab_size": )" + std::to_string(c.t5.vocab_size) +
            R"(, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false, "layer_norm_epsilon": 1e-6})");
  const LoadReport t5_report = LoadT5(*target, tmp / "t5");
  ExpectSameUnder(source, target, "t5_model.");
  EXPECT_TRUE(t5_report.missing.empty()) << t5_report.Summary();
  EXPECT_EQ(FindPretrainedFiles(tmp / "t5").weights.size(), 2u);
  std::filesystem::remove(tmp / "t5/model-00002-of-00002.safetensors");
  error = ErrorOf([&] { LoadT5(*target, tmp / "t5"); });
  EXPECT_NE(error.find("shard 'model-00002-of-00002.safetensors'"), std::string::npos) << error;
  // Tokenizer files are found in their model's directory.
  std::filesystem::create_directories(tmp / "bert");
  std::string vocab;
  for (const std::string& token : BuildWordPieceVocab(AllInstructionTexts())) vocab += token + "\n";
  write(tmp / "bert/vocab.txt", vocab);
  TokenizerConfig tokenizers;
  tokenizers.bert_vocab = tmp / "bert";
  EXPECT_EQ(BuildTokenizers(tokenizers).bert->vocab_size(), testutil::GetTinyTokenizers().bert->vocab_size());
  tokenizers.t5_spiece = tmp / "bert";
  error = ErrorOf([&] { BuildTokenizers(tokenizers); });
  EXPECT_NE(error.find("tokenizers.t5_spiece: " + (tmp / "bert") + " is a directory without spiece.model"),
            std::string::npos) << error;
  // Pickles are never opened: the message says how to convert them.
  std::filesystem::create_directories(tmp / "pickled");
  write(tmp / "pickled/pytorch_model.bin", "PK pickle");
  write(tmp / "pickled/config.json", "{}");
  for (const std::string& path : {tmp / "pickled", tmp / "pickled/pytorch_model.bin"}) {
    error = ErrorOf([&] { LoadBertIntoQFormers(*target, path); });
    EXPECT_NE(error.find("pytorch_model.bin is a PyTorch pickle"), std::string::npos) << error;
    EXPECT_NE(error.find("safe_serialization=True"), std::string::npos) << error;
  }
}

TEST(Weights, ShapeMismatchAndForeignFilesAreErrorsNamingTheKey) {
  TempDir tmp;
  InstructFlip model = MakeModel(1);
  SaveSafetensors(tmp / "bad.safetensors", {{"vision_model.post_layernorm.weight", torch::ones({48})}});
  const std::string error = ErrorOf([&] { LoadClipVision(*model, tmp / "bad.safetensors"); });
  EXPECT_NE(error.find("vision_model.post_layernorm.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("shape"), std::string::npos) << error;
  SaveSafetensors(tmp / "other.safetensors", {{"roberta.encoder.weight", torch::ones({2})}});
  const std::string foreign = ErrorOf([&] { LoadClipVision(*model, tmp / "other.safetensors"); });
  EXPECT_NE(foreign.find("no tensor of the CLIP checkpoint"), std::string::npos) << foreign;
  std::ofstream(tmp / "garbage.safetensors") << "not a safetensors file";
  const std::string garbage = ErrorOf([&] { LoadT5(*model, tmp / "garbage.safetensors"); });
  EXPECT_NE(garbage.find("garbage.safetensors"), std::string::npos) << garbage;
}

}  // namespace
}  // namespace instructflip
