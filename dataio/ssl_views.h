// The two augmented views of the SSL branch (the reference's
// get_ssl_transforms, SimCLR's recipe), per sample and keyed, so a view does
// not depend on threads or ranks:
//   RandomResizedCrop(out, scale 0.08..1, ratio 3/4..4/3; 10 tries, then the
//   centre crop) -> ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, its four
//   operations in random order -> RandomGrayscale p 0.2 -> Gaussian blur,
//   sigma 0.1..2, p 0.5 -> horizontal flip p 0.5 -> normalise.
// Differences from torchvision + PIL, all small: the crop is resized
// bilinearly (PIL: bilinear with antialias when shrinking); brightness,
// contrast, saturation and grey follow PIL's formulas in float, rounded once
// per operation; hue shifts in HSV as torchvision's tensor path; the blur is a
// true Gaussian (radius 3 sigma, clamped edges) where PIL approximates it with
// box blurs.
#pragma once

#include <array>
#include <cstdint>

#include "dataio/augment.h"
#include "dataio/jpeg_codec.h"

namespace instructflip {

struct SslViewParams {
  int crop_x = 0, crop_y = 0, crop_width = 0, crop_height = 0;  // in the source image
  bool jitter = false;
  float brightness = 1.f, contrast = 1.f, saturation = 1.f, hue = 0.f;  // hue in [-0.1, 0.1] turns
  std::array<int, 4> order{0, 1, 2, 3};                                 // brightness, contrast, saturation, hue
  bool grayscale = false;
  bool blur = false;
  float sigma = 0.f;
  bool flip = false;
};

// The parameters of one view of a width x height image from `key`.
SslViewParams SampleSslViewParams(int width, int height, uint64_t key);

// One view of `image` at out_size x out_size: (3, out_size, out_size) floats, normalised.
void MakeSslView(const RgbImage& image, int out_size, const SslViewParams& params, const NormalizeOptions& normalize,
                 float* out);

}  // namespace instructflip
