#include "dataio/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "dataio/base/rng.h"

namespace instructflip {
namespace {

using Lut = std::array<std::array<uint8_t, 256>, 3>;  // per channel
using FloatLut = std::array<std::array<float, 256>, 3>;

inline uint8_t ClampRound(float v) {
  const float r = std::floor(v + 0.5f);
  return static_cast<uint8_t>(r < 0.f ? 0.f : (r > 255.f ? 255.f : r));
}

// PIL's RGB -> L conversion (ITU-R 601-2 luma, 16-bit fixed point).
inline int Grey(int r, int g, int b) { return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; }

inline uint8_t Brightness(int x, float b) { return ClampRound(b * static_cast<float>(x)); }
inline uint8_t Blend(int degenerate, int x, float factor) {
  return ClampRound(static_cast<float>(degenerate) + factor * static_cast<float>(x - degenerate));
}

// Saturation runs per pixel, so it uses 12-bit fixed point instead of float
// rounding (floor() is a libm call without SSE4.1): factor_q = round(s * 4096).
constexpr int kSaturationShift = 12;
inline int SaturationFactor(float s) { return static_cast<int>(std::lround(s * (1 << kSaturationShift))); }
inline int Saturate(int grey, int x, int factor_q) {
  const int v = (grey << kSaturationShift) + factor_q * (x - grey) + (1 << (kSaturationShift - 1));
  const int r = v >> kSaturationShift;  // arithmetic shift: floor for negatives
  return r < 0 ? 0 : (r > 255 ? 255 : r);
}

// round(mean grey) from per-channel sums, shared by both implementations so the
// fused and the step-by-step paths agree exactly.
inline int MeanGrey(const std::array<int64_t, 3>& sums, int64_t pixels) {
  const double mean = (0.299 * sums[0] + 0.587 * sums[1] + 0.114 * sums[2]) / static_cast<double>(pixels);
  return static_cast<int>(std::floor(mean + 0.5));
}

Lut IdentityLut() {
  Lut lut;
  for (auto& channel : lut)
    for (int v = 0; v < 256; ++v) channel[v] = static_cast<uint8_t>(v);
  return lut;
}

// Normalised float value of each uint8 level, per channel.
FloatLut NormalizeLut(const NormalizeOptions& n) {
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) / 255.f - n.mean[c]) / n.std[c];
  return lut;
}

// Channel sums of lut(image): contrast needs the mean grey of the image as the
// preceding steps left it. A direct pass beats a histogram (whose increments
// serialise on store-to-load forwarding); with an identity LUT it is a plain
// byte sum the compiler vectorises.
std::array<int64_t, 3> SumsThroughLut(const uint8_t* rgb, int64_t pixels, const Lut& lut,
                                      bool identity) {
  std::array<int64_t, 3> sums{};
  if (identity) {
    uint32_t partial[3] = {0, 0, 0};  // < 2^24 pixels per chunk cannot overflow
    for (int64_t start = 0; start < pixels; start += 1 << 16) {
      const int64_t end = std::min(pixels, start + (1 << 16));
      for (int64_t i = start; i < end; ++i) {
        partial[0] += rgb[3 * i];
        partial[1] += rgb[3 * i + 1];
        partial[2] += rgb[3 * i + 2];
      }
      for (int c = 0; c < 3; ++c) {
        sums[c] += partial[c];
        partial[c] = 0;
      }
    }
    return sums;
  }
  for (int64_t i = 0; i < pixels; ++i) {
    sums[0] += lut[0][rgb[3 * i]];
    sums[1] += lut[1][rgb[3 * i + 1]];
    sums[2] += lut[2][rgb[3 * i + 2]];
  }
  return sums;
}

inline void ApplyBrightness(Lut* lut, float b) {
  for (auto& channel : *lut)
    for (auto& v : channel) v = Brightness(v, b);
}
inline void ApplyContrast(Lut* lut, int mean, float c) {
  for (auto& channel : *lut)
    for (auto& v : channel) v = Blend(mean, v, c);
}

// Row y of an interleaved image through the per-channel `pre` LUT into planar
// int32 (r, g, b), mirrored when `flip`.
inline void GatherRow(const uint8_t* source, int y, int width, bool flip, const Lut& pre, int32_t* r,
                      int32_t* g, int32_t* b) {
  const uint8_t* row = source + static_cast<int64_t>(y) * width * 3;
  for (int x = 0; x < width; ++x) {
    const uint8_t* p = row + 3 * (flip ? width - 1 - x : x);
    r[x] = pre[0][p[0]];
    g[x] = pre[1][p[1]];
    b[x] = pre[2][p[2]];
  }
}

// Saturation of one row held as planar int32 (r, g, b): a branch-free loop the
// compiler vectorises (built for AVX2 and a baseline, picked at run time).
__attribute__((target_clones("avx2", "default"))) void SaturateRow(int32_t* r, int32_t* g,
                                                                     int32_t* b, int width,
                                                                     int factor_q) {
  for (int x = 0; x < width; ++x) {
    const int grey = Grey(r[x], g[x], b[x]);
    r[x] = Saturate(grey, r[x], factor_q);
    g[x] = Saturate(grey, g[x], factor_q);
    b[x] = Saturate(grey, b[x], factor_q);
  }
}

// The final pass, row by row: pre-LUT (with flip) into planar int32, optional
// saturation, then one float LUT per channel (post-LUT and normalisation folded
// in) into the CHW planes.
void FinalPass(const uint8_t* source, int height, int width, bool flip, const Lut& pre,
               bool saturate, int saturation_q, const FloatLut& final_lut, float* out) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  std::vector<int32_t> row_buffer(3 * static_cast<size_t>(width));
  int32_t* r = row_buffer.data();
  int32_t* g = r + width;
  int32_t* b = g + width;
  for (int y = 0; y < height; ++y) {
    GatherRow(source, y, width, flip, pre, r, g, b);
    if (saturate) SaturateRow(r, g, b, width, saturation_q);
    float* out0 = out + static_cast<int64_t>(y) * width;
    float* out1 = out0 + pixels;
    float* out2 = out1 + pixels;
    for (int x = 0; x < width; ++x) {
      out0[x] = final_lut[0][r[x]];
      out1[x] = final_lut[1][g[x]];
      out2[x] = final_lut[2][b[x]];
    }
  }
}

// post(saturate(pre(image))) as interleaved uint8: the image contrast sees
// when it follows saturation.
void MaterialiseSaturated(const uint8_t* source, int height, int width, const Lut& pre,
                          int saturation_q, const Lut& post, uint8_t* out) {
  std::vector<int32_t> row_buffer(3 * static_cast<size_t>(width));
  int32_t* r = row_buffer.data();
  int32_t* g = r + width;
  int32_t* b = g + width;
  for (int y = 0; y < height; ++y) {
    uint8_t* dst = out + static_cast<int64_t>(y) * width * 3;
    GatherRow(source, y, width, /*flip=*/false, pre, r, g, b);
    SaturateRow(r, g, b, width, saturation_q);
    for (int x = 0; x < width; ++x) {
      dst[3 * x] = post[0][r[x]];
      dst[3 * x + 1] = post[1][g[x]];
      dst[3 * x + 2] = post[2][b[x]];
    }
  }
}

}  // namespace

AugmentParams SampleAugmentParams(const AugmentOptions& options, uint64_t key) {
  AugmentParams p;
  if (!options.enabled) return p;
  KeyedRng rng(key);
  p.flip = rng.Uniform() < options.flip_probability;
  p.jitter = true;
  auto factor = [&](float strength) {
    return static_cast<float>(rng.Uniform(std::max(0.f, 1.f - strength), 1.f + strength));
  };
  p.brightness = factor(options.brightness);
  p.contrast = factor(options.contrast);
  p.saturation = factor(options.saturation);
  // Random order, as torchvision's ColorJitter (randperm over its operations).
  for (int i = 2; i > 0; --i) std::swap(p.order[i], p.order[rng.Below(i + 1)]);
  return p;
}

void TransformToChw(const uint8_t* rgb, int height, int width, const AugmentParams& params,
                    const NormalizeOptions& normalize, float* out) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  const uint8_t* source = rgb;
  std::vector<uint8_t> materialised;  // only when contrast follows saturation
  Lut pre = IdentityLut(), post = IdentityLut();
  bool saturate = false;
  const int saturation_q = SaturationFactor(params.saturation);

  if (params.jitter) {
    bool pre_is_identity = true;
    for (JitterOp op : params.order) {
      switch (op) {
        case JitterOp::kBrightness:
          ApplyBrightness(saturate ? &post : &pre, params.brightness);
          pre_is_identity = pre_is_identity && saturate;
          break;
        case JitterOp::kSaturation:
          saturate = true;
          break;
        case JitterOp::kContrast:
          if (saturate) {
            // Contrast needs the mean of the saturated image: materialise it.
            materialised.resize(static_cast<size_t>(pixels) * 3);
            MaterialiseSaturated(source, height, width, pre, saturation_q, post, materialised.data());
            source = materialised.data();
            pre = IdentityLut();
            post = IdentityLut();
            saturate = false;
            pre_is_identity = true;
          }
          ApplyContrast(&pre, MeanGrey(SumsThroughLut(source, pixels, pre, pre_is_identity), pixels),
                        params.contrast);
          pre_is_identity = false;
          break;
      }
    }
  }

  // Fold what follows the last per-pixel step into one float LUT per channel:
  // without saturation that is pre -> post -> normalise, with it post -> normalise.
  const auto norm = NormalizeLut(normalize);
  FloatLut final_lut;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) final_lut[c][v] = norm[c][post[c][saturate ? v : pre[c][v]]];
  FinalPass(source, height, width, params.flip, saturate ? pre : IdentityLut(), saturate, saturation_q,
            final_lut, out);
}

void TransformToChwReference(const uint8_t* rgb, int height, int width, const AugmentParams& params,
                             const NormalizeOptions& normalize, float* out) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  std::vector<uint8_t> image(rgb, rgb + pixels * 3);
  if (params.flip)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width / 2; ++x)
        for (int c = 0; c < 3; ++c)
          std::swap(image[(static_cast<int64_t>(y) * width + x) * 3 + c],
                    image[(static_cast<int64_t>(y) * width + (width - 1 - x)) * 3 + c]);
  if (params.jitter) {
    for (JitterOp op : params.order) {
      if (op == JitterOp::kBrightness) {
        for (auto& v : image) v = Brightness(v, params.brightness);
      } else if (op == JitterOp::kContrast) {
        std::array<int64_t, 3> sums{};
        for (int64_t i = 0; i < pixels; ++i)
          for (int c = 0; c < 3; ++c) sums[c] += image[3 * i + c];
        const int mean = MeanGrey(sums, pixels);
        for (auto& v : image) v = Blend(mean, v, params.contrast);
      } else {
        for (int64_t i = 0; i < pixels; ++i) {
          uint8_t* p = &image[3 * i];
          const int grey = Grey(p[0], p[1], p[2]);
          const int factor_q = SaturationFactor(params.saturation);
          for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(Saturate(grey, p[c], factor_q));
        }
      }
    }
  }
  for (int64_t i = 0; i < pixels; ++i)
    for (int c = 0; c < 3; ++c)
      out[c * pixels + i] = (static_cast<float>(image[3 * i + c]) / 255.f - normalize.mean[c]) / normalize.std[c];
}

void ResizeBilinear(const RgbImage& in, int out_height, int out_width, RgbImage* out) {
  out->width = out_width;
  out->height = out_height;
  out->pixels.resize(static_cast<size_t>(out_width) * out_height * 3);
  const float scale_y = static_cast<float>(in.height) / out_height;
  const float scale_x = static_cast<float>(in.width) / out_width;
  for (int y = 0; y < out_height; ++y) {
    const float fy = std::max(0.f, (y + 0.5f) * scale_y - 0.5f);
    const int y0 = std::min(static_cast<int>(fy), in.height - 1);
    const int y1 = std::min(y0 + 1, in.height - 1);
    const float wy = fy - y0;
    for (int x = 0; x < out_width; ++x) {
      const float fx = std::max(0.f, (x + 0.5f) * scale_x - 0.5f);
      const int x0 = std::min(static_cast<int>(fx), in.width - 1);
      const int x1 = std::min(x0 + 1, in.width - 1);
      const float wx = fx - x0;
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int yy, int xx) {
          return static_cast<float>(in.pixels[(static_cast<size_t>(yy) * in.width + xx) * 3 + c]);
        };
        const float top = at(y0, x0) + wx * (at(y0, x1) - at(y0, x0));
        const float bottom = at(y1, x0) + wx * (at(y1, x1) - at(y1, x0));
        out->pixels[(static_cast<size_t>(y) * out_width + x) * 3 + c] = ClampRound(top + wy * (bottom - top));
      }
    }
  }
}

}  // namespace instructflip
