// Image transforms of the loader, the reference's torchvision pipelines:
//   train: Resize(224) -> RandomHorizontalFlip(0.5) -> ColorJitter(0.2, 0.2, 0.2, 0)
//          -> ToTensor -> Normalize(mean, std)
//   test:  Resize(224) -> ToTensor -> Normalize(mean, std)
// ColorJitter follows PIL's ImageEnhance semantics on uint8 images (the
// reference feeds PIL images): each factor is drawn from [0.8, 1.2], the three
// operations run in a random order, and each rounds and clamps to 0..255:
//   brightness  x' = b * x
//   contrast    x' = m + c * (x - m), m = round(mean grey of the whole image)
//   saturation  x' = g + s * (x - g), g = the pixel's grey (ITU-R 601: PIL's "L"),
//               in 12-bit fixed point (per-pixel float rounding is the hot spot)
// Speed: per-channel operations are composed into lookup tables and the whole
// chain, flip, normalisation and the HWC->CHW transpose run in one pass over
// the pixels, after one summing pass for contrast's mean (and one more only
// when contrast follows saturation: it needs the mean of the saturated image).
#pragma once

#include <array>
#include <cstdint>

#include "dataio/jpeg_codec.h"

namespace instructflip {

struct NormalizeOptions {
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};  // ImageNet, as the reference
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

struct AugmentOptions {
  bool enabled = false;  // train transforms on/off
  float flip_probability = 0.5f;
  float brightness = 0.2f;
  float contrast = 0.2f;
  float saturation = 0.2f;
};

enum class JitterOp : uint8_t { kBrightness = 0, kContrast = 1, kSaturation = 2 };

struct AugmentParams {
  bool flip = false;
  bool jitter = false;
  float brightness = 1.f, contrast = 1.f, saturation = 1.f;
  std::array<JitterOp, 3> order{JitterOp::kBrightness, JitterOp::kContrast, JitterOp::kSaturation};
};

// Draws the parameters for one sample from `key` (a hash of seed, epoch and the
// sample's position in the epoch): the same key always gives the same params.
AugmentParams SampleAugmentParams(const AugmentOptions& options, uint64_t key);

// rgb: (height, width, 3) uint8. out: (3, height, width) float, normalised.
void TransformToChw(const uint8_t* rgb, int height, int width, const AugmentParams& params,
                    const NormalizeOptions& normalize, float* out);

// Straightforward step-by-step version of the same transform (one full image
// pass per operation); the test oracle for TransformToChw.
void TransformToChwReference(const uint8_t* rgb, int height, int width, const AugmentParams& params,
                             const NormalizeOptions& normalize, float* out);

// Bilinear resize with half-pixel centres (OpenCV INTER_LINEAR / PIL without
// antialias); used only when the store's image size differs from the output.
void ResizeBilinear(const RgbImage& in, int out_height, int out_width, RgbImage* out);

}  // namespace instructflip
