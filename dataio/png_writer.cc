#include "dataio/png_writer.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
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

}  // namespace

void WritePng(const std::string& path, const uint8_t* pixels, int width, int height, int channels) {
  IF_REQUIRE(width > 0 && height > 0 && (channels == 1 || channels == 3), path, ": cannot write a ", width, "x",
             height, "x", channels, " PNG");
  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  IF_REQUIRE(png != nullptr && info != nullptr, path, ": libpng could not start");
  std::vector<png_bytep> rows(height);
  for (int y = 0; y < height; ++y) rows[y] = const_cast<png_bytep>(pixels + int64_t(y) * width * channels);
  if (setjmp(png_jmpbuf(png))) {  // libpng reports errors by longjmp
    png_destroy_write_struct(&png, &info);
    IF_FAIL(path, ": libpng failed to encode the image");
  }
  png_set_write_fn(png, &bytes, Append, NoFlush);
  png_set_IHDR(png, info, width, height, 8, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_rows(png, info, rows.data());
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  WriteFileAtomic(path, bytes);
}

}  // namespace instructflip
