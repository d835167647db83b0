// The meta-domain store's sample schema: what one face image carries besides its
// JPEG bytes. Codes follow CelebA-Spoof's annotation (spoof types) and the
// reference's style attributes; -1 means "unknown" for the style attributes.
// dataio/README.md documents the on-disk form.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dataio/base/choices.h"

namespace instructflip {

inline constexpr int kSchemaVersion = 1;

enum class Split : int8_t { kTrain = 0, kTest = 1 };

// CelebA-Spoof order (index 40 of its 44-value label).
inline constexpr std::array<const char*, 11> kSpoofTypeNames = {
    "live",         "photo", "poster", "a4", "face_mask", "upper_body_mask",
    "region_mask",  "pc",    "pad",    "phone", "3d_mask"};
inline constexpr std::array<const char*, 4> kIlluminationNames = {"normal", "strong", "back",
                                                                   "dark"};
inline constexpr std::array<const char*, 2> kEnvironmentNames = {"indoor", "outdoor"};
inline constexpr std::array<const char*, 3> kCameraQualityNames = {"low", "medium", "high"};

// Spoof-type families, used by the synthetic generator and by tests.
// A spoof whose type the dataset does not annotate (MSU, CASIA, Replay, OULU
// lists): the content question then has no ground truth, as the reference's
// RGBInstructDataset ("No GT").
inline constexpr int kUnknownSpoofType = -1;

inline constexpr bool IsPrintAttack(int spoof_type) { return spoof_type >= 1 && spoof_type <= 3; }
inline constexpr bool IsReplayAttack(int spoof_type) { return spoof_type >= 7 && spoof_type <= 9; }

// One sample's attributes (everything but the image bytes).
struct SampleAttributes {
  int8_t label = 0;            // 0 live, 1 spoof
  int8_t spoof_type = 0;       // 0..10, kSpoofTypeNames; -1 = a spoof of unknown type
  int8_t illumination = -1;    // 0..3 or -1
  int8_t environment = -1;     // 0..1 or -1
  int8_t camera_quality = -1;  // 0..2 or -1
  int64_t video_id = 0;        // frames of one video share it (unique within a domain)
  int64_t subject_id = -1;
  Split split = Split::kTrain;
  std::string source;          // original path (or a synthetic name)
};

// Throws instructflip::Error naming `where` and the field if a value is out of range
// or inconsistent (live with a spoof type, spoof without one).
void ValidateAttributes(const SampleAttributes& attributes, const std::string& where);

// Domain names become file and directory names (roc_NAME.csv,
// explanations/NAME/), so every writer and reader of a manifest holds them to this.
bool IsValidDomainName(const std::string& name);
inline constexpr char kDomainNameRule[] =
    "(1 to 64 letters, digits, '_', '.' or '-', not starting with '.')";

inline const Choices<Split> kSplits{{"train", Split::kTrain}, {"test", Split::kTest}};

}  // namespace instructflip
