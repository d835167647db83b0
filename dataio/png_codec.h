// 8-bit PNG (libpng): explanation images and cue maps, and lossless store
// images (`ingest --encoding png|keep`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataio/jpeg_codec.h"

namespace instructflip {

// `height` rows of `width` x `channels` bytes (1 = gray, 3 = RGB) as PNG bytes.
std::string EncodePng(const uint8_t* pixels, int width, int height, int channels);
// The same, written atomically (temp file + rename). Errors name the path.
void WritePng(const std::string& path, const uint8_t* pixels, int width, int height, int channels);

// Whether the bytes start with the PNG signature.
bool IsPng(const uint8_t* data, size_t size);
// Width/height from the header; throws instructflip::Error naming `what` if
// the bytes are not a PNG.
void PeekPngSize(const uint8_t* data, size_t size, const std::string& what, int* width, int* height);
// Decodes any 8-bit or 16-bit PNG (gray, palette, alpha) to 8-bit sRGB RGB as
// libpng's simplified API does (alpha composited onto black, gamma
// converted). Throws instructflip::Error naming `what` for
// a truncated or corrupt stream or a header over `max_pixels`.
void DecodePng(const uint8_t* data, size_t size, const std::string& what, RgbImage* out,
               int64_t max_pixels = kMaxJpegPixels);

}  // namespace instructflip
