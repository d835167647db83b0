// The bytes of a stored image: JPEG (the default) or PNG (lossless ingest),
// told apart by their signature. Every read of a store goes through here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataio/jpeg_codec.h"

namespace instructflip {

enum class ImageEncoding { kJpeg, kPng };

// Width/height from a JPEG or PNG header; throws instructflip::Error naming
// `what` for anything else.
void PeekStoredImageSize(const uint8_t* data, size_t size, const std::string& what, int* width, int* height);
// Decodes a JPEG or PNG stream into RGB (errors as DecodeJpeg / DecodePng).
void DecodeStoredImage(const uint8_t* data, size_t size, const std::string& what, RgbImage* out,
                       int64_t max_pixels = kMaxJpegPixels);
// RGB pixels as `encoding` (`jpeg_quality` for JPEG).
std::string EncodeStoredImage(const RgbImage& image, ImageEncoding encoding, int jpeg_quality);

}  // namespace instructflip
