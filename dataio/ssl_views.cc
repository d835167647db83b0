#include "dataio/ssl_views.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/rng.h"

namespace instructflip {
namespace {

uint8_t Clamp255(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

float Grey(const uint8_t* p) { return (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000.f; }  // PIL "L"

void Brightness(std::vector<uint8_t>& px, float f) {
  for (uint8_t& v : px) v = Clamp255(v * f);
}

void Contrast(std::vector<uint8_t>& px, float f) {
  double sum = 0;
  for (size_t i = 0; i < px.size(); i += 3) sum += std::lround(Grey(&px[i]));
  const float mean = static_cast<float>(std::lround(sum / (px.size() / 3)));
  for (uint8_t& v : px) v = Clamp255(mean + f * (v - mean));
}

void Saturation(std::vector<uint8_t>& px, float f) {
  for (size_t i = 0; i < px.size(); i += 3) {
    const float g = static_cast<float>(std::lround(Grey(&px[i])));
    for (int c = 0; c < 3; ++c) px[i + c] = Clamp255(g + f * (px[i + c] - g));
  }
}

// Hue rotation by `shift` turns in HSV, as torchvision's adjust_hue.
void Hue(std::vector<uint8_t>& px, float shift) {
  for (size_t i = 0; i < px.size(); i += 3) {
    const float r = px[i] / 255.f, g = px[i + 1] / 255.f, b = px[i + 2] / 255.f;
    const float max = std::max({r, g, b}), min = std::min({r, g, b}), delta = max - min;
    float h = 0;
    if (delta > 0) {
      if (max == r) h = std::fmod((g - b) / delta, 6.f);
      else if (max == g) h = (b - r) / delta + 2.f;
      else h = (r - g) / delta + 4.f;
      h /= 6.f;
    }
    h = h + shift;
    h -= std::floor(h);
    const float s = max > 0 ? delta / max : 0, v = max;
    const float sector = h * 6.f;
    const int k = static_cast<int>(sector) % 6;
    const float f = sector - std::floor(sector);
    const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    const float rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; ++c) px[i + c] = Clamp255(rgb[k][c] * 255.f);
  }
}

void Grayscale(std::vector<uint8_t>& px) {
  for (size_t i = 0; i < px.size(); i += 3) px[i] = px[i + 1] = px[i + 2] = Clamp255(Grey(&px[i]));
}

// Separable Gaussian, radius ceil(3 sigma), edges clamped.
void Blur(std::vector<uint8_t>& px, int size, float sigma) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  std::vector<float> kernel(2 * radius + 1);
  float sum = 0;
  for (int k = -radius; k <= radius; ++k) sum += kernel[k + radius] = std::exp(-0.5f * k * k / (sigma * sigma));
  for (float& w : kernel) w /= sum;
  std::vector<float> pass(px.size());
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) {
        float v = 0;
        for (int k = -radius; k <= radius; ++k) v += kernel[k + radius] * px[(y * size + std::clamp(x + k, 0, size - 1)) * 3 + c];
        pass[(y * size + x) * 3 + c] = v;
      }
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) {
        float v = 0;
        for (int k = -radius; k <= radius; ++k) v += kernel[k + radius] * pass[(std::clamp(y + k, 0, size - 1) * size + x) * 3 + c];
        px[(y * size + x) * 3 + c] = Clamp255(v);
      }
}

}  // namespace

SslViewParams SampleSslViewParams(int width, int height, uint64_t key) {
  KeyedRng rng(key);
  SslViewParams p;
  // RandomResizedCrop, torchvision's get_params.
  const double area = double(width) * height;
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * rng.Uniform(0.08, 1.0);
    const double ratio = std::exp(rng.Uniform(std::log(3.0 / 4), std::log(4.0 / 3)));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      p.crop_y = static_cast<int>(rng.Below(height - h + 1));
      p.crop_x = static_cast<int>(rng.Below(width - w + 1));
      p.crop_width = w;
      p.crop_height = h;
      found = true;
    }
  }
  if (!found) {  // the whole image, cut to the ratio range, centred
    const double ratio = double(width) / height;
    int w = width, h = height;
    if (ratio < 3.0 / 4) h = static_cast<int>(std::lround(w / (3.0 / 4)));
    else if (ratio > 4.0 / 3) w = static_cast<int>(std::lround(h * (4.0 / 3)));
    p.crop_width = w;
    p.crop_height = h;
    p.crop_x = (width - w) / 2;
    p.crop_y = (height - h) / 2;
  }
  p.jitter = rng.Uniform() < 0.8;
  p.brightness = static_cast<float>(rng.Uniform(0.6, 1.4));
  p.contrast = static_cast<float>(rng.Uniform(0.6, 1.4));
  p.saturation = static_cast<float>(rng.Uniform(0.6, 1.4));
  p.hue = static_cast<float>(rng.Uniform(-0.1, 0.1));
  for (int i = 3; i > 0; --i) std::swap(p.order[i], p.order[rng.Below(i + 1)]);
  p.grayscale = rng.Uniform() < 0.2;
  p.blur = rng.Uniform() < 0.5;
  p.sigma = static_cast<float>(rng.Uniform(0.1, 2.0));
  p.flip = rng.Uniform() < 0.5;
  return p;
}

void MakeSslView(const RgbImage& image, int out_size, const SslViewParams& p, const NormalizeOptions& normalize,
                 float* out) {
  IF_REQUIRE(p.crop_width > 0 && p.crop_height > 0 && p.crop_x + p.crop_width <= image.width &&
                 p.crop_y + p.crop_height <= image.height,
             "SSL view: crop outside the ", image.width, "x", image.height, " image");
  RgbImage crop{p.crop_width, p.crop_height, std::vector<uint8_t>(size_t(p.crop_width) * p.crop_height * 3)};
  for (int y = 0; y < p.crop_height; ++y)
    std::copy_n(&image.pixels[(size_t(p.crop_y + y) * image.width + p.crop_x) * 3], size_t(p.crop_width) * 3,
                &crop.pixels[size_t(y) * p.crop_width * 3]);
  RgbImage view;
  ResizeBilinear(crop, out_size, out_size, &view);
  std::vector<uint8_t>& px = view.pixels;
  if (p.jitter)
    for (const int op : p.order) {
      if (op == 0) Brightness(px, p.brightness);
      if (op == 1) Contrast(px, p.contrast);
      if (op == 2) Saturation(px, p.saturation);
      if (op == 3) Hue(px, p.hue);
    }
  if (p.grayscale) Grayscale(px);
  if (p.blur) Blur(px, out_size, p.sigma);
  AugmentParams finish;  // flip and normalise only
  finish.flip = p.flip;
  TransformToChw(px.data(), out_size, out_size, finish, normalize, out);
}

}  // namespace instructflip
