// Training configuration from YAML (configs/train/*.yaml) with `--set
// key.path=value` overrides applied to the YAML before it is read, so
// overrides are checked exactly like the file (unknown keys, types). The
// resolved configuration is written into the run directory and checkpoints.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "dist/device.h"
#include "model/instructions.h"
#include "trainer/trainer.h"

namespace instructflip::launch {

struct TrainConfig {
  TrainerOptions trainer;
  DeviceRequest device = DeviceRequest::kAuto;  // resolved per rank (dist/device.h)
  int communication_timeout_s = 600;
  // How evaluation, validation and LODO tests pick each sample's style question
  // (eval.style_question; never from the label).
  ScoringStyleQuestion eval_style_question = ScoringStyleQuestion::kUniform;
  std::string resolved_yaml;  // the whole configuration after overrides, model inlined
};

// `overrides`: "a.b=value" strings (value parsed as YAML: numbers, booleans, lists).
TrainConfig LoadTrainConfig(const std::string& path, const std::vector<std::string>& overrides);
// A resolved configuration as a run directory or a checkpoint holds it (no
// `base:` chain, no overrides); `what` names its origin in errors.
TrainConfig ParseResolvedTrainConfig(const std::string& yaml_text, const std::string& what);

// The dotted keys whose values differ between two resolved configurations
// ("schedule.max_lr: 0.001 -> 0.01", "+ key: v", "- key: v"), sorted.
std::vector<std::string> ChangedKeys(const std::string& before_yaml, const std::string& after_yaml);

// Rank 0, before a run starts in `run_dir`: if the directory already holds
// another configuration (a resume, or a start over its checkpoints), that is
// refused listing the changed keys, unless `allow_change`. Nothing is written.
void CheckRunConfig(const std::string& run_dir, const std::string& resolved_yaml, bool allow_change);
// Rank 0, once the run started (TrainerOptions::started): its config.yaml
// becomes `resolved_yaml` (CheckRunConfig first); an allowed change is
// recorded in versions.txt.
void WriteRunConfig(const std::string& run_dir, const std::string& resolved_yaml, bool allow_change);

}  // namespace instructflip::launch
