#include "dataio/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "dataio/base/rng.h"
#include "tests/dataio/test_util.h"
#if INSTRUCTFLIP_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include "dataio/producers/baseline_loader.h"
#endif

namespace instructflip {
namespace {

RgbImage NoiseImage(int h, int w, uint64_t seed) {
  RgbImage image;
  image.height = h;
  image.width = w;
  image.pixels.resize(static_cast<size_t>(h) * w * 3);
  KeyedRng rng(seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)  // smooth gradient + noise, with saturated corners
        image.pixels[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(
            std::min(255.0, std::max(0.0, (x + y + c * 40) * 255.0 / (h + w) + rng.Uniform(-40, 40) +
                                              (x < 3 ? 200 : 0))));
  return image;
}

TEST(Augment, FusedPathEqualsStepByStepForEveryOrder) {
  const RgbImage image = NoiseImage(23, 31, 7);
  const NormalizeOptions normalize;
  std::vector<float> fused(3 * 23 * 31), reference(3 * 23 * 31);
  std::array<JitterOp, 3> order{JitterOp::kBrightness, JitterOp::kContrast, JitterOp::kSaturation};
  int cases = 0;
  do {
    for (bool flip : {false, true})
      for (float strength : {0.8f, 1.0f, 1.2f}) {
        AugmentParams p;
        p.flip = flip;
        p.jitter = true;
        p.order = order;
        p.brightness = strength;
        p.contrast = 2.2f - strength;
        p.saturation = strength + 0.05f;
        TransformToChw(image.pixels.data(), 23, 31, p, normalize, fused.data());
        TransformToChwReference(image.pixels.data(), 23, 31, p, normalize, reference.data());
        ASSERT_EQ(fused, reference) << "order " << int(order[0]) << int(order[1]) << int(order[2])
                                    << " flip " << flip << " strength " << strength;
        ++cases;
      }
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(cases, 36);
}

TEST(Augment, TestTransformIsPlainNormalisation) {
  const RgbImage image = NoiseImage(8, 8, 3);
  std::vector<float> out(3 * 64);
  NormalizeOptions normalize;
  TransformToChw(image.pixels.data(), 8, 8, AugmentParams{}, normalize, out.data());
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 64; ++i)
      EXPECT_FLOAT_EQ(out[c * 64 + i], (image.pixels[i * 3 + c] / 255.f - normalize.mean[c]) / normalize.std[c]);
}

TEST(Augment, ParametersAreDeterministicAndInRange) {
  AugmentOptions options;
  options.enabled = true;
  int flips = 0;
  std::set<std::array<JitterOp, 3>> orders;
  for (uint64_t key = 0; key < 4000; ++key) {
    const AugmentParams p = SampleAugmentParams(options, key);
    const AugmentParams again = SampleAugmentParams(options, key);
    EXPECT_EQ(p.brightness, again.brightness);
    EXPECT_EQ(p.order, again.order);
    for (float f : {p.brightness, p.contrast, p.saturation}) {
      EXPECT_GE(f, 0.8f);
      EXPECT_LE(f, 1.2f);
    }
    flips += p.flip;
    orders.insert(p.order);
  }
  EXPECT_NEAR(flips / 4000.0, 0.5, 0.03);
  EXPECT_EQ(orders.size(), 6u);
  EXPECT_FALSE(SampleAugmentParams(AugmentOptions{}, 1).jitter);  // test mode: identity
}

TEST(Augment, ResizeBilinearKeepsFlatImagesAndScales) {
  RgbImage flat;
  flat.width = flat.height = 10;
  flat.pixels.assign(300, 77);
  RgbImage out;
  ResizeBilinear(flat, 7, 13, &out);
  EXPECT_EQ(out.width, 13);
  EXPECT_EQ(out.height, 7);
  for (uint8_t v : out.pixels) EXPECT_EQ(v, 77);
  // Identity size: unchanged.
  const RgbImage image = NoiseImage(9, 9, 1);
  ResizeBilinear(image, 9, 9, &out);
  EXPECT_EQ(out.pixels, image.pixels);
}

#if INSTRUCTFLIP_HAVE_OPENCV
TEST(Augment, OpenCvBaselineComputesTheSameTransform) {
  testing::TempDir tmp;
  const RgbImage image = NoiseImage(32, 32, 5);
  // The baseline reads a file: store the image losslessly as PNG (BGR order).
  cv::Mat bgr(32, 32, CV_8UC3);
  for (int i = 0; i < 32 * 32; ++i)
    for (int c = 0; c < 3; ++c) bgr.data[i * 3 + c] = image.pixels[i * 3 + 2 - c];
  ASSERT_TRUE(cv::imwrite(tmp / "x.png", bgr));
  AugmentOptions options;
  options.enabled = true;
  std::vector<float> ours(3 * 32 * 32), baseline(3 * 32 * 32);
  for (uint64_t key = 0; key < 12; ++key) {
    const AugmentParams p = SampleAugmentParams(options, key);
    TransformToChw(image.pixels.data(), 32, 32, p, NormalizeOptions{}, ours.data());
    BaselineLoadImage(tmp / "x.png", 32, p, NormalizeOptions{}, baseline.data());
    double diff = 0;
    for (size_t i = 0; i < ours.size(); ++i) diff += std::abs(ours[i] - baseline[i]);
    // Grey and rounding formulas differ by at most a level or two of 255.
    EXPECT_LT(diff / ours.size(), 2.5 / 255 / 0.225) << "key " << key;
  }
}
#endif

}  // namespace
}  // namespace instructflip
