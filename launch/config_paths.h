// Finds configuration files: a path as given, else configs/model/NAME.yaml
// under the working directory, else under the source tree this binary was
// built from (so `instructflip bench step --model tiny` works anywhere).
#pragma once

#include <string>

namespace instructflip::launch {

std::string ResolveModelConfigPath(const std::string& name_or_path);

}  // namespace instructflip::launch
