// configs/model/*.yaml parse into the configurations the code documents, and
// bad YAML gives errors naming the file and key.
#include "launch/model_config_yaml.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/common/test_util.h"

namespace instructflip::launch {
namespace {

using instructflip::testing::ErrorOf;
using instructflip::testing::TempDir;

const std::string kConfigs = std::string(INSTRUCTFLIP_SOURCE_DIR) + "/configs/model/";

TEST(ModelConfigYaml, BaseIsThePapersModel) {
  const ModelConfig c = LoadModelConfig(kConfigs + "base.yaml");
  const ModelConfig defaults;
  EXPECT_EQ(c.variant, Variant::kFull);
  EXPECT_EQ(c.vision.width, 768);
  EXPECT_EQ(c.vision.layers, 12);
  EXPECT_EQ(c.qformer.layers, 2);
  EXPECT_EQ(c.qformer.heads, 16);
  EXPECT_DOUBLE_EQ(c.qformer.layer_norm_eps, 1e-7);
  EXPECT_EQ(c.qformer.vocab_size, 30523);
  EXPECT_EQ(c.t5.vocab_size, 32128);
  EXPECT_EQ(c.t5.d_ff, 2048);
  EXPECT_EQ(c.t5.feed_forward_activation, "gelu");
  EXPECT_TRUE(c.fusion.causal_self_attention);
  EXPECT_FALSE(c.fusion.feed_forward_residual);
  EXPECT_DOUBLE_EQ(c.loss.content_lm, 0.4);
  EXPECT_DOUBLE_EQ(c.loss.cue, 0.05);
  EXPECT_DOUBLE_EQ(c.cue_noise_weight, 0.5);
  // The YAML states the paper's values; they equal the struct defaults.
  EXPECT_EQ(c.vision.heads, defaults.vision.heads);
  EXPECT_EQ(c.t5.relative_buckets, defaults.t5.relative_buckets);
}

TEST(ModelConfigYaml, RelativeFilePathsResolveAgainstTheFileThatNamesThem) {
  // base.yaml names weights/ at the top of the checkout, wherever the command runs.
  const ModelConfig base = LoadModelConfig(kConfigs + "base.yaml");
  const std::filesystem::path top = std::filesystem::path(INSTRUCTFLIP_SOURCE_DIR).lexically_normal();
  EXPECT_EQ(base.pretrained.clip, (top / "weights/clip-vit-base-patch16").string());
  EXPECT_EQ(base.tokenizers.t5_spiece, (top / "weights/flan-t5-base").string());
  TempDir tmp;
  std::filesystem::create_directories(tmp / "models");
  std::ofstream(tmp / "models/m.yaml") << "name: m\ntokenizers: {bert_vocab: instructions, t5_spiece: ../tok/spiece.model}\n"
                                          "pretrained: {clip: /abs/clip, bert: '', t5: w/t5}\n";
  const ModelConfig m = LoadModelConfig(tmp / "models/m.yaml");
  EXPECT_EQ(m.tokenizers.bert_vocab, "instructions");
  EXPECT_EQ(m.tokenizers.t5_spiece, std::filesystem::path(tmp / "tok/spiece.model").lexically_normal().string());
  EXPECT_EQ(m.pretrained.clip, "/abs/clip");
  EXPECT_EQ(m.pretrained.bert, "");
  EXPECT_EQ(m.pretrained.t5, tmp / "models/w/t5");
}

TEST(ModelConfigYaml, TinyRoundTripsThroughYaml) {
  const ModelConfig c = LoadModelConfig(kConfigs + "tiny.yaml");
  EXPECT_EQ(c.vision.image_size, 64);
  EXPECT_EQ(c.qformer.vocab_size, 0);  // taken from the tokenizer
  EXPECT_EQ(c.tokenizers.bert_vocab, "instructions");
  const ModelConfig again = ParseModelConfig(ModelConfigToYaml(c), "roundtrip");
  EXPECT_EQ(YAML::Dump(ModelConfigToYaml(again)), YAML::Dump(ModelConfigToYaml(c)));
}

TEST(ModelConfigYaml, VariantSetsTheReferenceLossWeights) {
  TempDir tmp;
  std::ofstream(tmp / "ve_cb.yaml") << "variant: ve_cb\n";
  const ModelConfig c = LoadModelConfig(tmp / "ve_cb.yaml");
  EXPECT_DOUBLE_EQ(c.loss.classification, 0.5);
  EXPECT_DOUBLE_EQ(c.loss.content_lm, 0.5);
  EXPECT_DOUBLE_EQ(c.loss.style_lm, 0.0);
}

// LoRA on the frozen T5: read, validated, written only when enabled (a
// configuration from before it round-trips unchanged).
TEST(ModelConfigYaml, LoraIsReadCheckedAndWrittenOnlyWhenOn) {
  TempDir tmp;
  std::ofstream(tmp / "lora.yaml") << "lora: {rank: 8, alpha: 32, targets: \"q,v\"}\n";
  const ModelConfig c = LoadModelConfig(tmp / "lora.yaml");
  EXPECT_EQ(c.t5.lora.rank, 8);
  EXPECT_DOUBLE_EQ(c.t5.lora.alpha, 32);
  EXPECT_DOUBLE_EQ(c.t5.lora.dropout, 0.1);
  EXPECT_TRUE(c.t5.lora.Targets("v"));
  EXPECT_FALSE(c.t5.lora.Targets("wo"));
  EXPECT_EQ(ModelConfigToYaml(c)["lora"]["rank"].as<int>(), 8);
  EXPECT_EQ(ParseModelConfig(ModelConfigToYaml(c), "again").t5.lora.targets, "q,v");
  EXPECT_FALSE(ModelConfigToYaml(LoadModelConfig(kConfigs + "base.yaml"))["lora"]);
  std::ofstream(tmp / "bad.yaml") << "lora: {rank: 4, targets: \"q,mlp\"}\n";
  const std::string e = ErrorOf([&] { LoadModelConfig(tmp / "bad.yaml"); });
  EXPECT_NE(e.find("lora.targets names 'mlp'"), std::string::npos) << e;
  std::ofstream(tmp / "neg.yaml") << "lora: {rank: -1}\n";
  EXPECT_NE(ErrorOf([&] { LoadModelConfig(tmp / "neg.yaml"); }).find("lora.rank must be in 0..4096"), std::string::npos);
}

TEST(ModelConfigYaml, BadInputNamesFileAndKey) {
  TempDir tmp;
  auto error_of = [&](const std::string& text) {
    std::ofstream(tmp / "c.yaml") << text;
    return ErrorOf([&] { LoadModelConfig(tmp / "c.yaml"); });
  };
  std::string e = error_of("vision: {widht: 64}\n");
  EXPECT_NE(e.find("unknown key 'vision.widht'"), std::string::npos) << e;
  EXPECT_NE(e.find("c.yaml"), std::string::npos) << e;
  e = error_of("qformer: {layers: two}\n");
  EXPECT_NE(e.find("'qformer.layers' must be a whole number, got 'two'"), std::string::npos) << e;
  e = error_of("variant: huge\n");
  EXPECT_NE(e.find("c.yaml: 'variant' must be full, no_llm, ve, ve_cb, ve_cb_sb or mc, got 'huge'"), std::string::npos)
      << e;
  e = error_of("vision: {width: 30, heads: 4}\n");
  EXPECT_NE(e.find("vision.width 30 is not a multiple of vision.heads 4"), std::string::npos) << e;
  e = error_of("vision: [1, 2]\n");
  EXPECT_NE(e.find("'vision' must be a mapping"), std::string::npos) << e;
  e = error_of("vision: {width: 64\n");
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
  e = ErrorOf([&] { LoadModelConfig(tmp / "absent.yaml"); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  // Sizes no machine holds are refused by name, not by an allocation failure.
  e = error_of("vision: {layers: 100000}\n");
  EXPECT_NE(e.find("'vision.layers' must be in 1..65536, got 100000"), std::string::npos) << e;
  e = error_of("vision: {width: 16384, heads: 16, layers: 1000}\nqformer: {hidden: 16384}\n");
  EXPECT_NE(e.find("billion parameters"), std::string::npos) << e;
}

}  // namespace
}  // namespace instructflip::launch
