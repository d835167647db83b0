// Stored images are JPEG or PNG, told apart by their signature: PNG is exact
// (lossless) both ways, and damaged or oversized streams are errors naming
// what was read, before any pixel memory is taken for an oversized one.
#include "dataio/image_codec.h"

#include <gtest/gtest.h>

#include "dataio/base/check.h"
#include "dataio/png_codec.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

using testing::ErrorOf;

RgbImage Gradient(int width, int height) {
  RgbImage image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>((i * 37) ^ (i / 7));
  return image;
}

TEST(ImageCodec, PngIsLosslessAndJpegIsNot) {
  const RgbImage image = Gradient(29, 17);
  const std::string png = EncodeStoredImage(image, ImageEncoding::kPng, 90);
  const std::string jpeg = EncodeStoredImage(image, ImageEncoding::kJpeg, 90);
  const auto* p = reinterpret_cast<const uint8_t*>(png.data());
  const auto* j = reinterpret_cast<const uint8_t*>(jpeg.data());
  EXPECT_TRUE(IsPng(p, png.size()));
  EXPECT_FALSE(IsPng(j, jpeg.size()));
  int width = 0, height = 0;
  PeekStoredImageSize(p, png.size(), "png", &width, &height);
  EXPECT_EQ(width, 29);
  EXPECT_EQ(height, 17);
  RgbImage decoded;
  DecodeStoredImage(p, png.size(), "png", &decoded);
  EXPECT_EQ(decoded.width, 29);
  EXPECT_EQ(decoded.pixels, image.pixels);
  DecodeStoredImage(j, jpeg.size(), "jpeg", &decoded);
  EXPECT_EQ(decoded.width, 29);
  EXPECT_NE(decoded.pixels, image.pixels);  // a busy gradient does not survive JPEG exactly
}

TEST(ImageCodec, DamagedOrOversizedPngIsAnErrorNamingTheSample) {
  const RgbImage image = Gradient(32, 32);
  const std::string png = EncodeStoredImage(image, ImageEncoding::kPng, 90);
  RgbImage out;
  auto decode = [&](const std::string& bytes, int64_t max_pixels = kMaxJpegPixels) {
    return ErrorOf([&] {
      DecodeStoredImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "sample 7", &out, max_pixels);
    });
  };
  std::string e = decode(png.substr(0, png.size() / 2));
  EXPECT_NE(e.find("sample 7: corrupt or truncated PNG"), std::string::npos) << e;
  std::string flipped = png;
  flipped[png.size() / 2] ^= 0x5A;  // inside the compressed data: its CRC no longer matches
  e = decode(flipped);
  EXPECT_NE(e.find("sample 7"), std::string::npos) << e;
  e = decode(png, 1000);
  EXPECT_NE(e.find("more than 1000 (refused before decoding)"), std::string::npos) << e;
  e = decode(png.substr(0, 20));
  EXPECT_NE(e.find("sample 7: not a PNG stream"), std::string::npos) << e;
  e = decode("neither");
  EXPECT_NE(e.find("sample 7"), std::string::npos) << e;
}

}  // namespace
}  // namespace instructflip
