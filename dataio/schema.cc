#include "dataio/schema.h"

#include <algorithm>
#include <cctype>

#include "dataio/base/check.h"

namespace instructflip {

bool IsValidDomainName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '.' || c == '-';
         });
}

void ValidateAttributes(const SampleAttributes& a, const std::string& where) {
  IF_REQUIRE(a.label == 0 || a.label == 1, where, ": field 'label' must be 0 (live) or 1 (spoof), got ",
             int(a.label));
  IF_REQUIRE(a.spoof_type >= kUnknownSpoofType && a.spoof_type < int(kSpoofTypeNames.size()), where,
             ": field 'spoof_type' must be in -1..10, got ", int(a.spoof_type));
  IF_REQUIRE((a.label == 0) == (a.spoof_type == 0), where, ": field 'spoof_type' ",
             int(a.spoof_type), " contradicts label ", int(a.label),
             " (live samples have spoof_type 0, spoof samples 1..10 or -1 = unknown)");
  IF_REQUIRE(a.illumination >= -1 && a.illumination < int(kIlluminationNames.size()), where,
             ": field 'illumination' must be in -1..3, got ", int(a.illumination));
  IF_REQUIRE(a.environment >= -1 && a.environment < int(kEnvironmentNames.size()), where,
             ": field 'environment' must be in -1..1, got ", int(a.environment));
  IF_REQUIRE(a.camera_quality >= -1 && a.camera_quality < int(kCameraQualityNames.size()), where,
             ": field 'camera_quality' must be in -1..2, got ", int(a.camera_quality));
}


}  // namespace instructflip
