// ModelConfig from YAML (configs/model/*.yaml). Keys mirror the struct fields:
// name, variant, vision.*, qformer.*, t5.*, fusion.*, tokenizers.*, pretrained.*,
// loss.*, cue_noise_weight, cue_beta, cue_hidden, max_new_tokens. Absent keys keep
// the paper's defaults; loss weights default to the variant's (the reference's).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "model/model_config.h"

namespace instructflip::launch {

ModelConfig ParseModelConfig(const YAML::Node& node, const std::string& file, const std::string& path = "");
ModelConfig LoadModelConfig(const std::string& path);
YAML::Node ModelConfigToYaml(const ModelConfig& config);

}  // namespace instructflip::launch
