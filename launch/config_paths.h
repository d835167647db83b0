// Finds configuration files: a path as given, else configs/<kind>/NAME.yaml
// or the relative path under the working directory, else under the source
// tree this binary was built from (so `instructflip bench step --model tiny`
// and `instructflip lodo --protocol synthetic_lodo` work anywhere).
#pragma once

#include <string>

namespace instructflip::launch {

// kind: "model", "train", "protocols". Errors name the kind and the name.
std::string ResolveConfigPath(const std::string& name_or_path, const std::string& kind);
inline std::string ResolveModelConfigPath(const std::string& name_or_path) {
  return ResolveConfigPath(name_or_path, "model");
}

// The source tree this binary was built from (slurm/ templates, configs/).
std::string SourceDirectory();

}  // namespace instructflip::launch
