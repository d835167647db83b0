// configs/train/*.yaml and --set overrides into TrainConfig: every key typed
// (64-bit seeds and step counts, enums parsed here once), defaults where the
// file is silent, and errors that name the file, the key and the value.
#include "launch/train_config_yaml.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "dataio/base/file_util.h"
#include "tests/common/test_util.h"

namespace instructflip::launch {
namespace {

using instructflip::testing::ErrorOf;
using instructflip::testing::TempDir;

const std::string kPaperConfig = std::string(INSTRUCTFLIP_SOURCE_DIR) + "/configs/train/instruct_flip.yaml";

TEST(TrainConfigYaml, ThePapersRecipeIsReadIntoTypedOptions) {
  const TrainConfig c = LoadTrainConfig(kPaperConfig, {});
  const TrainerOptions& t = c.trainer;
  EXPECT_EQ(t.model.name, "base");
  EXPECT_EQ(t.store, "data/meta-domain");
  EXPECT_EQ(t.train_domains, std::vector<std::string>{"celeba_spoof"});
  EXPECT_EQ(t.sampling, SamplingMode::kBalanced);
  EXPECT_DOUBLE_EQ(t.validation_fraction, 0.05);
  EXPECT_EQ(t.epoch_size, 12800);
  EXPECT_EQ(t.loader_threads, 8);
  EXPECT_DOUBLE_EQ(t.optimizer.weight_decay, 1e-7);
  EXPECT_DOUBLE_EQ(t.schedule.max_lr, 5e-6);
  EXPECT_DOUBLE_EQ(t.schedule.final_div_factor, 1);
  EXPECT_EQ(t.batch_per_rank, 24);
  EXPECT_EQ(t.accumulation, 10);
  EXPECT_EQ(t.total_steps, 1080);
  EXPECT_EQ(t.precision, torch::kBFloat16);
  EXPECT_EQ(c.device, DeviceRequest::kAuto);
  EXPECT_EQ(t.checkpoint_every, 100);
  EXPECT_EQ(t.keep_last, 3);
  EXPECT_EQ(t.seed, 2u);
  EXPECT_EQ(t.reducer.bucket_bytes, 25 << 20);
  EXPECT_EQ(t.reducer.first_bucket_bytes, 1 << 20);
  EXPECT_EQ(c.communication_timeout_s, 600);
  EXPECT_EQ(t.resolved_config, c.resolved_yaml);
  // The resolved configuration inlines the model, so a run directory is self-contained.
  EXPECT_EQ(YAML::Load(c.resolved_yaml)["model"]["vision"]["width"].as<int>(), 768);
}

TEST(TrainConfigYaml, OverridesAreTypedLikeTheFileWithAllSixtyFourBits) {
  const TrainConfig c = LoadTrainConfig(
      kPaperConfig, {"seed=18446744073709551615", "data.validation_seed=4294967296", "total_steps=5000000000",
                     "precision=fp32", "device=cpu", "model.t5_warmup.seed=9007199254740993", "model=tiny"});
  EXPECT_EQ(c.trainer.seed, 18446744073709551615ull);
  EXPECT_EQ(c.trainer.validation_seed, 4294967296ull);  // was cut to 32 bits before
  EXPECT_EQ(c.trainer.total_steps, 5000000000ll);
  EXPECT_EQ(c.trainer.precision, torch::kFloat32);
  EXPECT_EQ(c.device, DeviceRequest::kCpu);
  EXPECT_EQ(c.trainer.model.name, "tiny");  // `--set model=NAME` replaces the inlined model
  EXPECT_EQ(LoadTrainConfig(kPaperConfig, {"model.t5_warmup.seed=9007199254740993"}).trainer.model.t5_warmup.seed,
            9007199254740993ull);
}

TEST(TrainConfigYaml, BadValuesNameFileKeyAndValue) {
  auto error = [](std::vector<std::string> overrides) {
    return ErrorOf([&] { LoadTrainConfig(kPaperConfig, overrides); });
  };
  std::string e = error({"seed=-1"});
  EXPECT_NE(e.find("instruct_flip.yaml: 'seed' must be a non-negative whole number, got '-1'"), std::string::npos) << e;
  e = error({"total_steps=many"});
  EXPECT_NE(e.find("'total_steps' must be a whole number, got 'many'"), std::string::npos) << e;
  e = error({"precision=fp8"});
  EXPECT_NE(e.find("'precision' must be fp32, bf16 or fp16, got 'fp8'"), std::string::npos) << e;
  e = error({"device=gpu"});
  EXPECT_NE(e.find("'device' must be auto, cpu or cuda, got 'gpu'"), std::string::npos) << e;
  e = error({"data.sampling=sorted"});
  EXPECT_NE(e.find("instruct_flip.yaml: 'data.sampling' must be plain or balanced, got 'sorted'"), std::string::npos)
      << e;
  e = error({"eval.style_question=random"});
  EXPECT_NE(e.find("'eval.style_question' must be uniform, ensemble, illumination, environment or camera_quality, "
                   "got 'random'"),
            std::string::npos)
      << e;
  e = error({"schedule.max_lr=[1]"});
  EXPECT_NE(e.find("'schedule.max_lr' must be a number"), std::string::npos) << e;
  e = error({"dist.bucket_mbs=3"});
  EXPECT_NE(e.find("unknown key 'dist.bucket_mbs'"), std::string::npos) << e;
  e = error({"optimizer.decay=biases"});
  EXPECT_NE(e.find("'optimizer.decay' must be all or matrices, got 'biases'"), std::string::npos) << e;
  EXPECT_TRUE(LoadTrainConfig(kPaperConfig, {}).trainer.optimizer.decay_all_parameters);  // the reference's
  EXPECT_FALSE(LoadTrainConfig(kPaperConfig, {"optimizer.decay=matrices"}).trainer.optimizer.decay_all_parameters);
  e = error({"data.validation_fraction=1"});
  EXPECT_NE(e.find("'data.validation_fraction' must be in [0, 1)"), std::string::npos) << e;
  e = error({"seed"});
  EXPECT_NE(e.find("--set expects key.path=value"), std::string::npos) << e;
  TempDir dir;
  e = ErrorOf([&] { LoadTrainConfig(dir.Write("t.yaml", "data: {store: x}\n"), {}); });
  EXPECT_NE(e.find("missing key 'model'"), std::string::npos) << e;
}

// Found by the YAML fuzzer: a list or mapping used as a key once escaped as
// yaml-cpp's bad-conversion exception (no file named, exit 1). A config path
// that is a device or FIFO is refused at once rather than read for ever.
TEST(TrainConfigYaml, KeysThatAreNotNamesAndFilesThatAreNotFilesAreRefused) {
  TempDir dir;
  const std::string paper = ReadFile(kPaperConfig);
  std::string e = ErrorOf([&] { LoadTrainConfig(dir.Write("t.yaml", paper + "? [a, b]\n: 1\n"), {}); });
  EXPECT_NE(e.find("t.yaml: '<root>' has a key that is not a name"), std::string::npos) << e;
  std::string nested = paper;
  nested.replace(nested.find("schedule: {"), 11, "schedule: {? {x: 1} : 2, ");
  e = ErrorOf([&] { LoadTrainConfig(dir.Write("u.yaml", nested), {}); });
  EXPECT_NE(e.find("u.yaml: 'schedule' has a key that is not a name"), std::string::npos) << e;
  // Also in a file laid onto a base (merged before its keys are checked), and a key given twice.
  e = ErrorOf([&] { LoadTrainConfig(dir.Write("v.yaml", "base: " + kPaperConfig + "\n? [a]\n: 1\n"), {}); });
  EXPECT_NE(e.find("v.yaml: '<root>' has a key that is not a name"), std::string::npos) << e;
  e = ErrorOf([&] { LoadTrainConfig(dir.Write("w.yaml", "base: " + kPaperConfig + "\nschedule: {max_lr: 1, max_lr: 2}\n"), {}); });
  EXPECT_NE(e.find("w.yaml: key 'schedule.max_lr' is given twice"), std::string::npos) << e;
  e = ErrorOf([&] { LoadTrainConfig("/dev/zero", {}); });
  EXPECT_NE(e.find("/dev/zero: not a regular file (a device, FIFO or socket)"), std::string::npos) << e;
  const std::string fifo = dir.path + "/fifo.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  e = ErrorOf([&] { LoadTrainConfig(fifo, {}); });  // would block in open(2) without O_NONBLOCK
  EXPECT_NE(e.find("fifo.yaml: not a regular file"), std::string::npos) << e;
}

// The style-question rules: defaults, both keys read, and the effective rules
// written into the resolved configuration even where the file omits them.
TEST(TrainConfigYaml, StyleQuestionRulesAreReadAndResolved) {
  TempDir dir;
  const std::string path = dir.Write("train.yaml", "model: tiny\ndata: {store: /nonexistent}\n");
  const TrainConfig defaults = LoadTrainConfig(path, {});
  EXPECT_EQ(defaults.trainer.style_question, StyleQuestionRule::kLabelBlind);
  EXPECT_EQ(defaults.eval_style_question, ScoringStyleQuestion::kUniform);
  const YAML::Node resolved = YAML::Load(defaults.resolved_yaml);
  EXPECT_EQ(resolved["data"]["style_question"].as<std::string>(), "label_blind");
  EXPECT_EQ(resolved["eval"]["style_question"].as<std::string>(), "uniform");

  const TrainConfig paper =
      LoadTrainConfig(path, {"data.style_question=reference", "eval.style_question=ensemble"});
  EXPECT_EQ(paper.trainer.style_question, StyleQuestionRule::kReference);
  EXPECT_EQ(paper.eval_style_question, ScoringStyleQuestion::kEnsemble);
  EXPECT_EQ(YAML::Load(paper.resolved_yaml)["data"]["style_question"].as<std::string>(), "reference");
  EXPECT_EQ(LoadTrainConfig(path, {"eval.style_question=camera_quality"}).eval_style_question,
            ScoringStyleQuestion::kCameraQuality);

  const std::string bad = ErrorOf([&] { LoadTrainConfig(path, {"data.style_question=labels"}); });
  EXPECT_NE(bad.find("'data.style_question'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("'labels'"), std::string::npos) << bad;
  EXPECT_NE(ErrorOf([&] { LoadTrainConfig(path, {"eval.typo=1"}); }).find("typo"), std::string::npos);
}

TEST(TrainConfigYaml, ChangedKeysNameEveryDifference) {
  const std::string before = "a: 1\nb: {c: x, d: [1, 2]}\ne: gone\n";
  const std::string after = "a: 1\nb: {c: y, d: [1, 3]}\nf: new\n";
  EXPECT_EQ(ChangedKeys(before, after),
            (std::vector<std::string>{"+ f: new", "- e: gone", "b.c: x -> y", "b.d: [1, 2] -> [1, 3]"}));
  EXPECT_TRUE(ChangedKeys(before, before).empty());
}

// A file with `base:` is its base with the file's keys laid on top: mappings
// merge key by key, a model named by NAME replaces the base's whole model, and
// a loop or a missing base is an error naming the files.
TEST(TrainConfigYaml, BaseConfigsAreMergedKeyByKey) {
  TempDir dir;
  dir.Write("parent.yaml", "model: tiny\ndata: {store: /s, epoch_size: 64, train_domains: [a, b]}\n"
                           "batch_per_rank: 4\ntotal_steps: 100\n");
  const TrainConfig child = LoadTrainConfig(
      dir.Write("child.yaml", "base: parent.yaml\nmodel: {qformer: {layers: 1}}\ndata: {train_domains: [c]}\n"), {});
  EXPECT_EQ(child.trainer.model.name, "tiny");
  EXPECT_EQ(child.trainer.model.qformer.layers, 1);
  EXPECT_EQ(child.trainer.store, "/s");
  EXPECT_EQ(child.trainer.epoch_size, 64);
  EXPECT_EQ(child.trainer.train_domains, std::vector<std::string>{"c"});  // a list replaces, never appends
  EXPECT_EQ(child.trainer.batch_per_rank, 4);
  EXPECT_FALSE(YAML::Load(child.resolved_yaml)["base"]) << child.resolved_yaml;
  // A model by name is that model, not the base's with the named one's keys on top.
  const TrainConfig renamed = LoadTrainConfig(dir.Write("renamed.yaml", "base: child.yaml\nmodel: tiny\n"), {});
  EXPECT_EQ(renamed.trainer.model.qformer.layers, LoadTrainConfig(dir.path + "/parent.yaml", {}).trainer.model.qformer.layers);
  dir.Write("loop_a.yaml", "base: loop_b.yaml\n");
  dir.Write("loop_b.yaml", "base: loop_a.yaml\n");
  std::string e = ErrorOf([&] { LoadTrainConfig(dir.path + "/loop_a.yaml", {}); });
  EXPECT_NE(e.find("'base' chain loops"), std::string::npos) << e;
  e = ErrorOf([&] { LoadTrainConfig(dir.Write("orphan.yaml", "base: no_such_config\n"), {}); });
  EXPECT_NE(e.find("no_such_config"), std::string::npos) << e;
}

TEST(TrainConfigYaml, SpoofTypesAndStyleQuestionPoolAreReadAndChecked) {
  TempDir dir;
  const std::string path = dir.Write("t.yaml", "model: tiny\ndata: {store: /s}\n");
  const TrainConfig defaults = LoadTrainConfig(path, {});
  EXPECT_TRUE(defaults.trainer.spoof_types.empty());
  EXPECT_EQ(defaults.trainer.style_questions, 3);
  const TrainConfig set = LoadTrainConfig(path, {"data.spoof_types=[live, 3, pad, 3d_mask]", "data.style_questions=2"});
  EXPECT_EQ(set.trainer.spoof_types, (std::vector<int>{0, 3, 8, 10}));
  EXPECT_EQ(set.trainer.style_questions, 2);
  std::string e = ErrorOf([&] { LoadTrainConfig(path, {"data.spoof_types=[live, paper]"}); });
  EXPECT_NE(e.find("t.yaml: 'data.spoof_types' has 'paper', not a spoof type"), std::string::npos) << e;
  e = ErrorOf([&] { LoadTrainConfig(path, {"data.spoof_types=[pad, 8]"}); });
  EXPECT_NE(e.find("names '8' twice"), std::string::npos) << e;
  e = ErrorOf([&] { LoadTrainConfig(path, {"data.style_questions=4"}); });
  EXPECT_NE(e.find("t.yaml: 'data.style_questions' must be 1"), std::string::npos) << e;
}

// Every shipped training config loads; an ablation differs from the paper's
// recipe in exactly the keys its own file sets, each to the file's value.
TEST(TrainConfigYaml, EveryShippedConfigLoadsAndAnAblationChangesOnlyItsKeys) {
  const TrainConfig paper = LoadTrainConfig(kPaperConfig, {});
  int configs = 0, ablations = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(std::string(INSTRUCTFLIP_SOURCE_DIR) + "/configs/train")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    const TrainConfig c = LoadTrainConfig(entry.path().string(), {});
    ++configs;
    YAML::Node own = YAML::LoadFile(entry.path().string());
    if (!own["base"] || own["base"].as<std::string>() != "../../instruct_flip.yaml") continue;
    ++ablations;
    own.remove("base");
    std::set<std::string> own_keys;
    for (const std::string& change : ChangedKeys("{}", YAML::Dump(own)))  // "+ key: value" for each leaf
      own_keys.insert(change.substr(2, change.find(": ") - 2));
    // Each change is one of the file's keys, changed or added (ql2 equals the paper: no change at all).
    for (const std::string& change : ChangedKeys(paper.resolved_yaml, c.resolved_yaml)) {
      ASSERT_NE(change.rfind("- ", 0), 0u) << change;  // nothing of the recipe removed
      const size_t start = change.rfind("+ ", 0) == 0 ? 2 : 0;
      EXPECT_TRUE(own_keys.count(change.substr(start, change.find(": ") - start))) << change;
    }
    // ... and each of the file's keys has the file's value (numbers compared as numbers: 0.10 is 0.1).
    for (const std::string& change : ChangedKeys(YAML::Dump(own), c.resolved_yaml)) {
      if (change.rfind("+ ", 0) == 0) continue;  // a key the file leaves to its base
      const size_t colon = change.find(": "), arrow = change.find(" -> ");
      ASSERT_NE(arrow, std::string::npos) << change;
      if (change.rfind("model.pretrained.", 0) == 0) {  // a path relative to the file, resolved
        const std::filesystem::path given = change.substr(colon + 2, arrow - colon - 2);
        EXPECT_EQ((std::filesystem::absolute(entry.path().parent_path()) / given).lexically_normal().string(),
                  change.substr(arrow + 4));
        continue;
      }
      EXPECT_DOUBLE_EQ(std::stod(change.substr(colon + 2, arrow - colon - 2)), std::stod(change.substr(arrow + 4)))
          << change;
    }
  }
  EXPECT_GE(configs, 34);
  EXPECT_GE(ablations, 32);
  const std::string dir = std::string(INSTRUCTFLIP_SOURCE_DIR) + "/configs/train/ablations/";
  EXPECT_EQ(LoadTrainConfig(dir + "qformer_layers/ql4.yaml", {}).trainer.model.qformer.layers, 4);
  EXPECT_EQ(LoadTrainConfig(dir + "data/spoof_types_mode1.yaml", {}).trainer.spoof_types,
            (std::vector<int>{0, 3, 4, 8, 10}));
  EXPECT_EQ(LoadTrainConfig(dir + "data/style_prompts1.yaml", {}).trainer.style_questions, 1);
  const TrainerOptions mc = LoadTrainConfig(dir + "branch/mc.yaml", {}).trainer;
  EXPECT_EQ(mc.model.variant, Variant::kMultiClass);
  EXPECT_EQ(mc.accumulation, 1);
  EXPECT_DOUBLE_EQ(mc.model.loss.cue, 0.0);
  EXPECT_EQ(LoadTrainConfig(dir + "llm_size/flan_t5_xl.yaml", {}).trainer.model.t5.d_model, 2048);
}

}  // namespace
}  // namespace instructflip::launch
