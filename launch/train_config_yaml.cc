#include "launch/train_config_yaml.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>

#include <absl/strings/str_join.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/schema.h"
#include "launch/config_paths.h"
#include "launch/model_config_yaml.h"
#include "launch/version.h"
#include "launch/yaml_reader.h"
#include "trainer/run_files.h"

namespace instructflip::launch {
namespace {

// Sets node[a][b]... = value for "a.b=value".
void ApplyOverride(YAML::Node root, const std::string& assignment) {
  const size_t equals = assignment.find('=');
  IF_REQUIRE(equals != std::string::npos && equals > 0, "--set expects key.path=value, got '", assignment, "'");
  const std::string path = assignment.substr(0, equals);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(equals + 1));
  } catch (const YAML::Exception& e) {
    IF_FAIL("--set ", path, ": value is not valid YAML: ", e.what());
  }
  std::vector<std::string> keys;
  for (size_t start = 0; start <= path.size();) {
    const size_t dot = std::min(path.find('.', start), path.size());
    keys.push_back(path.substr(start, dot - start));
    start = dot + 1;
  }
  // yaml-cpp nodes are handles: walk down, creating mappings as needed.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node child = chain.back()[keys[i]];
    IF_REQUIRE(!child.IsDefined() || child.IsNull() || child.IsMap(), "--set ", path, ": '", keys[i],
               "' is not a mapping");
    chain.push_back(child);
  }
  chain.back()[keys.back()] = value;
}

// `over` laid onto `base`: mappings merge key by key, anything else replaces.
YAML::Node Merge(YAML::Node base, const YAML::Node& over) {
  if (!base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  for (const auto& item : over) {
    const std::string key = item.first.as<std::string>();
    base[key] = base[key] ? Merge(base[key], item.second) : YAML::Clone(item.second);
  }
  return base;
}

// A training config file with its `base:` chain resolved: the base (a name in
// configs/train, or a path relative to this file's folder) is loaded first
// and this file's keys are laid onto it. A model given by name or path is
// inlined at each level, so a file can change one model field
// (`model: {qformer: {layers: 4}}`) and `--set model.key=value` works alike.
YAML::Node LoadTrainYaml(const std::string& path, std::vector<std::string>* chain) {
  IF_REQUIRE(std::find(chain->begin(), chain->end(), path) == chain->end(), path, ": 'base' chain loops (",
             absl::StrJoin(*chain, " -> "), " -> ", path, ")");
  IF_REQUIRE(chain->size() < 16, path, ": 'base' chain deeper than 16 files");
  chain->push_back(path);
  YAML::Node root = LoadYamlFile(path);
  const bool model_named = root["model"] && root["model"].IsScalar();  // a whole model, replacing the base's
  if (model_named) {
    const std::string model_path = ResolveModelConfigPath(root["model"].as<std::string>());
    root["model"] = LoadYamlFile(model_path);
    ResolveModelFilePaths(root["model"], std::filesystem::path(model_path).parent_path().string());
  } else if (root["model"]) {  // inline keys: relative to this file
    ResolveModelFilePaths(root["model"], std::filesystem::path(path).parent_path().string());
  }
  const YAML::Node base_name = root["base"];
  if (!base_name) return root;
  IF_REQUIRE(base_name.IsScalar() && !base_name.as<std::string>().empty(), path,
             ": 'base' must name a training config");
  const std::string name = base_name.as<std::string>();
  const std::string beside = (std::filesystem::path(path).parent_path() / name).string();
  const std::string base_path = PathExists(beside) ? beside : ResolveConfigPath(name, "train");
  root.remove("base");
  YAML::Node merged = Merge(LoadTrainYaml(base_path, chain), root);
  if (model_named) merged["model"] = root["model"];
  return merged;
}

// data.spoof_types: names (kSpoofTypeNames) or codes 0..10.
std::vector<int> ParseSpoofTypes(const std::vector<std::string>& items, const std::string& path) {
  std::vector<int> codes;
  for (const std::string& item : items) {
    int code = -1;
    for (size_t t = 0; t < kSpoofTypeNames.size(); ++t)
      if (item == kSpoofTypeNames[t] || item == std::to_string(t)) code = static_cast<int>(t);
    IF_REQUIRE(code >= 0, path, ": 'data.spoof_types' has '", item, "', not a spoof type (",
               absl::StrJoin(kSpoofTypeNames, ", "), ", or 0..10)");
    IF_REQUIRE(std::find(codes.begin(), codes.end(), code) == codes.end(), path, ": 'data.spoof_types' names '",
               item, "' twice");
    codes.push_back(code);
  }
  return codes;
}

// The configuration in `root` (overrides applied); `path` names it in errors.
TrainConfig ParseTrainConfig(const YAML::Node& root, const std::string& path) {
  TrainConfig config;
  TrainerOptions& t = config.trainer;
  YamlSection top(root, path, "");
  // Every key in force, as read (yaml_reader.h); the model first, filled in below.
  YAML::Node resolved;
  resolved["model"] = YAML::Node();
  top.RecordInto(resolved);
  // model: a name in configs/model, a path, or an inline mapping.
  const YAML::Node model_node = top.Raw("model");
  IF_REQUIRE(model_node.IsDefined() && !model_node.IsNull(), path, ": missing key 'model'");
  if (model_node.IsScalar()) {  // `--set model=NAME` replaced the inlined one
    t.model = LoadModelConfig(ResolveModelConfigPath(model_node.as<std::string>()));
  } else {
    t.model = ParseModelConfig(model_node, path, "model");
  }

  YamlSection data = top.Section("data");
  data.Read("store", &t.store);
  IF_REQUIRE(!t.store.empty(), path, ": missing key 'data.store'");
  data.Read("sampling", &t.sampling, kSamplingModes);
  data.Read("train_domains", &t.train_domains);
  RequireNoRepeats(t.train_domains, path + ": 'data.train_domains'");
  data.Read("epoch_size", &t.epoch_size);
  data.Read("validation_fraction", &t.validation_fraction);
  data.Read("validation_seed", &t.validation_seed);
  data.Read("style_question", &t.style_question, kStyleQuestionRules);
  data.Read("style_questions", &t.style_questions);
  IF_REQUIRE(t.style_questions >= 1 && t.style_questions <= kNumStyleQuestions, path,
             ": 'data.style_questions' must be 1 (illumination), 2 (and environment) or 3 (and camera quality), got ",
             t.style_questions);
  IF_REQUIRE(t.style_questions == kNumStyleQuestions || t.model.asks_questions(), path,
             ": 'data.style_questions' has no effect on model variant ", kVariants.Name(t.model.variant),
             " (its classifier heads draw from all three attributes, as the reference's)");
  std::vector<std::string> spoof_types;
  data.Read("spoof_types", &spoof_types);
  t.spoof_types = ParseSpoofTypes(spoof_types, path);
  data.Read("loader_threads", &t.loader_threads);
  data.Read("prefetch", &t.prefetch);
  data.RejectUnknownKeys();

  YamlSection eval = top.Section("eval");
  eval.Read("style_question", &config.eval_style_question, kScoringStyleQuestions);
  eval.RejectUnknownKeys();

  YamlSection optimizer = top.Section("optimizer");
  optimizer.Read("weight_decay", &t.optimizer.weight_decay);
  optimizer.Read("decay", &t.optimizer.decay_all_parameters, kDecayRules);
  optimizer.Read("beta2", &t.optimizer.beta2);
  optimizer.Read("eps", &t.optimizer.eps);
  optimizer.RejectUnknownKeys();

  YamlSection schedule = top.Section("schedule");
  schedule.Read("max_lr", &t.schedule.max_lr);
  schedule.Read("pct_start", &t.schedule.pct_start);
  schedule.Read("div_factor", &t.schedule.div_factor);
  schedule.Read("final_div_factor", &t.schedule.final_div_factor);
  schedule.Read("base_momentum", &t.schedule.base_momentum);
  schedule.Read("max_momentum", &t.schedule.max_momentum);
  schedule.Read("cycle_momentum", &t.schedule.cycle_momentum);
  schedule.RejectUnknownKeys();

  top.Read("total_steps", &t.total_steps);
  top.Read("batch_per_rank", &t.batch_per_rank);
  top.Read("accumulation", &t.accumulation);
  top.Read("precision", &t.precision, kPrecisions);
  top.Read("device", &config.device, kDeviceRequests);
  top.Read("clip_grad_norm", &t.clip_grad_norm);
  top.Read("log_every", &t.log_every);
  top.Read("seed", &t.seed);

  YamlSection checkpoint = top.Section("checkpoint");
  checkpoint.Read("every", &t.checkpoint_every);
  checkpoint.Read("keep_last", &t.keep_last);
  checkpoint.RejectUnknownKeys();

  YamlSection dist = top.Section("dist");
  double bucket_mb = 25, first_bucket_mb = 1;
  dist.Read("bucket_mb", &bucket_mb);
  dist.Read("first_bucket_mb", &first_bucket_mb);
  dist.Read("overlap", &t.reducer.overlap);
  dist.Read("timeout_s", &config.communication_timeout_s);
  dist.RejectUnknownKeys();
  t.reducer.bucket_bytes = static_cast<int64_t>(bucket_mb * (1 << 20));
  t.reducer.first_bucket_bytes = static_cast<int64_t>(first_bucket_mb * (1 << 20));
  top.RejectUnknownKeys();

  IF_REQUIRE(t.validation_fraction >= 0 && t.validation_fraction < 1, path,
             ": 'data.validation_fraction' must be in [0, 1), got ", t.validation_fraction);
  IF_REQUIRE(t.batch_per_rank >= 1, path, ": 'batch_per_rank' must be >= 1, got ", t.batch_per_rank);
  IF_REQUIRE(t.accumulation >= 1, path, ": 'accumulation' must be >= 1, got ", t.accumulation);
  IF_REQUIRE(t.total_steps >= 2, path, ": 'total_steps' must be >= 2, got ", t.total_steps);
  IF_REQUIRE(config.communication_timeout_s >= 1, path, ": 'dist.timeout_s' must be >= 1");
  // Every other number within the range the code can run with (0 would divide or spin).
  auto require = [&](bool ok, const char* key, auto value, const char* range) {
    IF_REQUIRE(ok, path, ": '", key, "' must be ", range, ", got ", value);
  };
  require(t.log_every >= 1, "log_every", t.log_every, ">= 1");
  require(t.model.loss.ssl == 0 || t.batch_per_rank >= 2, "batch_per_rank", t.batch_per_rank,
          ">= 2 with model.loss.ssl > 0 (InfoNCE needs negatives, its batch norm two samples)");
  require(t.epoch_size >= 0, "data.epoch_size", t.epoch_size, ">= 0 (0: every eligible sample)");
  require(t.loader_threads >= 1 && t.loader_threads <= 256, "data.loader_threads", t.loader_threads, "in 1..256");
  require(t.prefetch >= 1 && t.prefetch <= 1024, "data.prefetch", t.prefetch, "in 1..1024");
  require(t.checkpoint_every >= 0, "checkpoint.every", t.checkpoint_every, ">= 0 (0: only at the end)");
  require(t.keep_last >= 1, "checkpoint.keep_last", t.keep_last, ">= 1");
  require(std::isfinite(t.clip_grad_norm) && t.clip_grad_norm >= 0, "clip_grad_norm", t.clip_grad_norm,
          ">= 0 (0: no clipping)");
  require(std::isfinite(t.optimizer.weight_decay) && t.optimizer.weight_decay >= 0, "optimizer.weight_decay",
          t.optimizer.weight_decay, ">= 0");
  require(t.optimizer.beta2 > 0 && t.optimizer.beta2 < 1, "optimizer.beta2", t.optimizer.beta2, "in (0, 1)");
  require(std::isfinite(t.optimizer.eps) && t.optimizer.eps > 0, "optimizer.eps", t.optimizer.eps, "> 0");
  // Computed in float: a larger rate would overflow before it could diverge.
  require(t.schedule.max_lr > 0 && t.schedule.max_lr <= std::numeric_limits<float>::max(), "schedule.max_lr",
          t.schedule.max_lr, "> 0 and at most 3.4e38 (a float)");
  require(std::isfinite(t.schedule.div_factor) && t.schedule.div_factor > 0, "schedule.div_factor",
          t.schedule.div_factor, "> 0");
  require(std::isfinite(t.schedule.final_div_factor) && t.schedule.final_div_factor > 0, "schedule.final_div_factor",
          t.schedule.final_div_factor, "> 0");
  // Adam's beta1 follows the momentum cycle.
  require(t.schedule.base_momentum >= 0 && t.schedule.base_momentum < 1, "schedule.base_momentum",
          t.schedule.base_momentum, "in [0, 1)");
  require(t.schedule.max_momentum >= 0 && t.schedule.max_momentum < 1, "schedule.max_momentum",
          t.schedule.max_momentum, "in [0, 1)");
  require(std::isfinite(bucket_mb) && bucket_mb > 0 && bucket_mb <= 4096, "dist.bucket_mb", bucket_mb,
          "in (0, 4096]");
  require(std::isfinite(first_bucket_mb) && first_bucket_mb > 0 && first_bucket_mb <= 4096, "dist.first_bucket_mb",
          first_bucket_mb, "in (0, 4096]");
  try {
    OneCycleSchedule(t.schedule, t.total_steps);  // its phases must fit the run
  } catch (const Error& e) {
    IF_FAIL(path, ": ", e.what());
  }

  resolved["model"] = ModelConfigToYaml(t.model);
  config.resolved_yaml = YAML::Dump(resolved) + "\n";
  t.resolved_config = config.resolved_yaml;
  return config;
}

}  // namespace

TrainConfig LoadTrainConfig(const std::string& path, const std::vector<std::string>& overrides) {
  std::vector<std::string> chain;
  YAML::Node root = LoadTrainYaml(path, &chain);
  for (const std::string& assignment : overrides) ApplyOverride(root, assignment);
  ResolveModelFilePaths(root["model"], ".");  // a --set path is relative to where the command runs
  return ParseTrainConfig(root, path);
}

TrainConfig ParseResolvedTrainConfig(const std::string& yaml_text, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    IF_FAIL(what, ": not valid YAML (", e.what(), ")");
  }
  IF_REQUIRE(root.IsMap(), what, ": not a training configuration (a YAML mapping)");
  // Model paths are absolute in what this build saves; an older build saved
  // them as given, relative to the directory the run was launched from.
  ResolveModelFilePaths(root["model"], ".");
  return ParseTrainConfig(root, what);
}

namespace {

void Flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>* out) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      Flatten(item.second, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  YAML::Emitter flow;
  flow << YAML::Flow << node;
  (*out)[prefix] = flow.c_str();
}

}  // namespace

std::vector<std::string> ChangedKeys(const std::string& before_yaml, const std::string& after_yaml) {
  std::map<std::string, std::string> before, after;
  Flatten(YAML::Load(before_yaml), "", &before);
  Flatten(YAML::Load(after_yaml), "", &after);
  std::vector<std::string> changes;
  for (const auto& [key, value] : before) {
    const auto it = after.find(key);
    if (it == after.end()) changes.push_back("- " + key + ": " + value);
    else if (it->second != value) changes.push_back(key + ": " + value + " -> " + it->second);
  }
  for (const auto& [key, value] : after)
    if (!before.count(key)) changes.push_back("+ " + key + ": " + value);
  std::sort(changes.begin(), changes.end());
  return changes;
}

namespace {

// The changed keys between the run directory's configuration and `resolved_yaml`
// (none for a new directory); a change without `allow_change` is refused.
std::vector<std::string> RunConfigChanges(const std::string& run_dir, const std::string& resolved_yaml,
                                          bool allow_change) {
  const std::string path = TrainRunFiles{run_dir}.Config();
  if (!PathExists(path)) return {};
  // Compared as resolved now: a configuration saved by an earlier build,
  // without the defaults it left out, is the same run when they agree.
  std::string saved = ReadFile(path);
  try {
    saved = ParseResolvedTrainConfig(saved, path).resolved_yaml;
  } catch (const Error&) {
    // Not readable as a configuration any more: compared as it is.
  }
  std::vector<std::string> changes;
  try {
    changes = ChangedKeys(saved, resolved_yaml);
  } catch (const YAML::Exception& e) {
    IF_FAIL(path, ": not valid YAML (", e.what(), "); it records this run's configuration: restore it, or use a new "
            "run directory");
  }
  IF_REQUIRE(changes.empty() || allow_change, run_dir, " was started with another configuration (", path,
             "); changed: ", absl::StrJoin(changes, "; "),
             ". Use a new run directory, or --allow-config-change to go on with the new one");
  return changes;
}

}  // namespace

void CheckRunConfig(const std::string& run_dir, const std::string& resolved_yaml, bool allow_change) {
  RunConfigChanges(run_dir, resolved_yaml, allow_change);
}

void WriteRunConfig(const std::string& run_dir, const std::string& resolved_yaml, bool allow_change) {
  const std::vector<std::string> changes = RunConfigChanges(run_dir, resolved_yaml, allow_change);
  if (!changes.empty())
    RecordVersion(run_dir, "configuration changed (--allow-config-change): " + absl::StrJoin(changes, "; "));
  WriteFileAtomic(TrainRunFiles{run_dir}.Config(), resolved_yaml);
}

}  // namespace instructflip::launch
