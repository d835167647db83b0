#include "launch/config_paths.h"

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip::launch {

std::string ResolveConfigPath(const std::string& name_or_path, const std::string& kind) {
  if (PathExists(name_or_path)) return name_or_path;
  for (const std::string& root : {std::string("."), SourceDirectory()})
    for (const std::string& relative : {"configs/" + kind + "/" + name_or_path + ".yaml", name_or_path}) {
      const std::string candidate = JoinPath(root, relative);
      if (PathExists(candidate)) return candidate;
    }
  IF_FAIL(kind, " config '", name_or_path, "' is neither a file nor one of configs/", kind, "/*.yaml");
}

std::string SourceDirectory() { return INSTRUCTFLIP_SOURCE_DIR; }

}  // namespace instructflip::launch
