#include "dataio/image_codec.h"

#include "dataio/base/check.h"
#include "dataio/png_codec.h"

namespace instructflip {

void PeekStoredImageSize(const uint8_t* data, size_t size, const std::string& what, int* width, int* height) {
  if (IsPng(data, size)) return PeekPngSize(data, size, what, width, height);
  PeekJpegSize(data, size, what, width, height);
}

void DecodeStoredImage(const uint8_t* data, size_t size, const std::string& what, RgbImage* out,
                       int64_t max_pixels) {
  if (IsPng(data, size)) return DecodePng(data, size, what, out, max_pixels);
  DecodeJpeg(data, size, what, out, max_pixels);
}

std::string EncodeStoredImage(const RgbImage& image, ImageEncoding encoding, int jpeg_quality) {
  if (encoding == ImageEncoding::kPng) return EncodePng(image.pixels.data(), image.width, image.height, 3);
  return EncodeJpeg(image, jpeg_quality);
}

}  // namespace instructflip
