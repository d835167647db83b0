// manifest.json of a store (dataio/manifest.h): any text either parses or is
// refused with instructflip::Error; an accepted manifest survives a round trip
// through ManifestToJson unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dataio/base/check.h"
#include "dataio/manifest.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  Manifest manifest;
  try {
    manifest = ManifestFromJson(std::string(reinterpret_cast<const char*>(data), size), "manifest.json");
  } catch (const Error&) {
    return 0;
  }
  const std::string json = ManifestToJson(manifest);
  if (ManifestToJson(ManifestFromJson(json, "round trip")) != json) fuzz::Broken("manifest round trip");
  return 0;
}
