// TurboJPEG encode/decode of RGB images. One TurboJPEG handle per thread
// (handles are not thread-safe and cost ~µs to create, so they are cached
// thread-locally rather than made per call).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace instructflip {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3) interleaved RGB
};

// Encodes interleaved RGB (4:2:0 chroma subsampling, as cameras and most FAS
// datasets store frames). `quality` in 1..100.
std::string EncodeJpeg(const uint8_t* rgb, int width, int height, int quality);
inline std::string EncodeJpeg(const RgbImage& image, int quality) {
  return EncodeJpeg(image.pixels.data(), image.width, image.height, quality);
}

// Reads width/height from the JPEG header; throws instructflip::Error naming `what`
// if the bytes are not a JPEG.
void PeekJpegSize(const uint8_t* data, size_t size, const std::string& what, int* width,
                  int* height);

// Larger than any camera frame: a header claiming more is a decompression bomb
// (65000 x 65000 once asked for 12.7 GB), refused before anything is allocated.
inline constexpr int64_t kMaxJpegPixels = int64_t{1} << 26;  // 67 megapixels

// Decodes into `out` (resized as needed). Throws instructflip::Error naming `what`
// for a truncated or corrupt stream (TurboJPEG warnings on truncated data count
// as errors: a half-grey face must never reach training silently), or a header
// over `max_pixels`.
void DecodeJpeg(const uint8_t* data, size_t size, const std::string& what, RgbImage* out,
                int64_t max_pixels = kMaxJpegPixels);

}  // namespace instructflip
