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

}  // namespace instructflip::launch
