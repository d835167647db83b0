#include "launch/config_paths.h"

#include "dataio/check.h"
#include "dataio/file_util.h"

namespace instructflip::launch {

std::string ResolveModelConfigPath(const std::string& name_or_path) {
  if (PathExists(name_or_path)) return name_or_path;
  const std::string relative = "configs/model/" + name_or_path + ".yaml";
  for (const std::string& root : {std::string("."), std::string(INSTRUCTFLIP_SOURCE_DIR)}) {
    const std::string candidate = JoinPath(root, relative);
    if (PathExists(candidate)) return candidate;
  }
  IF_FAIL("model config '", name_or_path, "' is neither a file nor one of configs/model/*.yaml");
}

}  // namespace instructflip::launch
