// The path every stored image takes (dataio/image_codec.h: JPEG or PNG by its
// signature): header peek, then decode. Any bytes either decode to an image of
// the size the header states or are refused with instructflip::Error; a header
// over the pixel limit is refused before its pixels are allocated.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dataio/base/check.h"
#include "dataio/image_codec.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace instructflip;
  fuzz::WriteSeedsIfAsked("jpeg", [] {
    std::vector<std::string> seeds;
    for (const int side : {1, 8, 17}) {
      RgbImage image{side, side, std::vector<uint8_t>(static_cast<size_t>(side) * side * 3)};
      for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 37);
      seeds.push_back(EncodeJpeg(image, side == 8 ? 50 : 90));
      seeds.push_back(EncodeStoredImage(image, ImageEncoding::kPng, 90));
    }
    return seeds;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  // libFuzzer's default memory limit is 2 GiB: keep a decode well below it, as
  // the store keeps it at its image size.
  constexpr int64_t kMaxPixels = int64_t{1} << 22;
  int width = 0, height = 0;
  try {
    PeekStoredImageSize(data, size, "fuzz input", &width, &height);
  } catch (const Error&) {
    return 0;
  }
  if (width <= 0 || height <= 0) fuzz::Broken("PeekStoredImageSize accepted a non-positive size");
  RgbImage image;
  try {
    DecodeStoredImage(data, size, "fuzz input", &image, kMaxPixels);
  } catch (const Error&) {
    return 0;
  }
  if (int64_t{width} * height > kMaxPixels) fuzz::Broken("decoded past the pixel limit");
  if (image.width != width || image.height != height ||
      image.pixels.size() != static_cast<size_t>(width) * height * 3)
    fuzz::Broken("decoded size differs from the header");
  return 0;
}
