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
// Reads a model YAML file, its relative file paths resolved against its folder.
ModelConfig LoadModelConfig(const std::string& path);

// The model's file paths (tokenizers.*, pretrained.*) in `model`, when
// relative, made absolute against `base_dir`: the folder of the YAML file that
// names them, so a configuration means the same files from any working
// directory. "instructions", empty and absolute values stay as they are.
void ResolveModelFilePaths(YAML::Node model, const std::string& base_dir);
YAML::Node ModelConfigToYaml(const ModelConfig& config);

}  // namespace instructflip::launch
