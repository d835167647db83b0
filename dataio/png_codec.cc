#include "dataio/png_codec.h"

#include <png.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"

namespace instructflip {
namespace {

void Append(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}

void NoFlush(png_structp) {}

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

}  // namespace

std::string EncodePng(const uint8_t* pixels, int width, int height, int channels) {
  IF_REQUIRE(width > 0 && height > 0 && (channels == 1 || channels == 3), "cannot encode a ", width, "x", height,
             "x", channels, " PNG");
  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  IF_REQUIRE(png != nullptr && info != nullptr, "libpng could not start");
  std::vector<png_bytep> rows(height);
  for (int y = 0; y < height; ++y) rows[y] = const_cast<png_bytep>(pixels + int64_t(y) * width * channels);
  if (setjmp(png_jmpbuf(png))) {  // libpng reports errors by longjmp
    png_destroy_write_struct(&png, &info);
    IF_FAIL("libpng failed to encode a ", width, "x", height, " image");
  }
  png_set_write_fn(png, &bytes, Append, NoFlush);
  png_set_IHDR(png, info, width, height, 8, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_rows(png, info, rows.data());
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return bytes;
}

void WritePng(const std::string& path, const uint8_t* pixels, int width, int height, int channels) {
  std::string bytes;
  try {
    bytes = EncodePng(pixels, width, height, channels);
  } catch (const Error& e) {
    IF_FAIL(path, ": ", e.what());
  }
  WriteFileAtomic(path, bytes);
}

bool IsPng(const uint8_t* data, size_t size) {
  return size >= sizeof(kSignature) && std::memcmp(data, kSignature, sizeof(kSignature)) == 0;
}

void PeekPngSize(const uint8_t* data, size_t size, const std::string& what, int* width, int* height) {
  // Signature, then the IHDR chunk: length (4), "IHDR", width (4), height (4), big-endian.
  IF_REQUIRE(IsPng(data, size) && size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0, what,
             ": not a PNG stream (no PNG signature and IHDR header)");
  auto be32 = [&](size_t at) {
    return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) | (uint32_t{data[at + 2]} << 8) | data[at + 3];
  };
  const uint32_t w = be32(16), h = be32(20);
  IF_REQUIRE(w >= 1 && h >= 1 && w <= (1u << 31) - 1 && h <= (1u << 31) - 1, what, ": PNG header claims ", w, "x",
             h, " pixels");
  *width = static_cast<int>(w);
  *height = static_cast<int>(h);
}

void DecodePng(const uint8_t* data, size_t size, const std::string& what, RgbImage* out, int64_t max_pixels) {
  int width = 0, height = 0;
  PeekPngSize(data, size, what, &width, &height);
  IF_REQUIRE(int64_t{width} * height <= max_pixels, what, ": PNG header claims ", width, "x", height,
             " pixels, more than ", max_pixels, " (refused before decoding)");
  // libpng's simplified API: no setjmp here, errors come back as a flag and a message.
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, data, size))
    IF_FAIL(what, ": corrupt PNG (", image.message, ")");
  image.format = PNG_FORMAT_RGB;
  out->width = static_cast<int>(image.width);
  out->height = static_cast<int>(image.height);
  try {
    out->pixels.resize(PNG_IMAGE_SIZE(image));
  } catch (...) {
    png_image_free(&image);
    throw;
  }
  // Alpha is composited onto black: without a background libpng would blend
  // onto whatever the (reused) buffer held.
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(&image, &black, out->pixels.data(), 0, nullptr)) {
    const std::string message = image.message;
    png_image_free(&image);
    IF_FAIL(what, ": corrupt or truncated PNG (", message, ")");
  }
}

}  // namespace instructflip
