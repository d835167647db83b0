#include "dataio/jpeg_codec.h"

#include <turbojpeg.h>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

// Thread-local TurboJPEG handles: created on first use in a thread, destroyed
// with the thread, and recreated after an error (a handle that failed on one
// stream can misreport the next one's header).
struct Handle {
  bool compress;
  tjhandle handle = nullptr;
  explicit Handle(bool c) : compress(c) { Reset(); }
  ~Handle() { tjDestroy(handle); }
  void Reset() {
    if (handle != nullptr) tjDestroy(handle);
    handle = compress ? tjInitCompress() : tjInitDecompress();
    IF_CHECK(handle != nullptr) << "TurboJPEG init failed: " << tjGetErrorStr();
  }
};

Handle& Compressor() {
  thread_local Handle h(true);
  return h;
}
Handle& Decompressor() {
  thread_local Handle h(false);
  return h;
}

// Takes the handle's error message and resets it for the next call.
std::string TakeError(Handle& h) {
  const std::string message = tjGetErrorStr2(h.handle);
  h.Reset();
  return message;
}

}  // namespace

std::string EncodeJpeg(const uint8_t* rgb, int width, int height, int quality) {
  IF_REQUIRE(quality >= 1 && quality <= 100, "JPEG quality must be in 1..100, got ", quality);
  IF_REQUIRE(width > 0 && height > 0, "cannot encode an empty image (", width, "x", height, ")");
  Handle& h = Compressor();
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  const int rc = tjCompress2(h.handle, rgb, width, 0, height, TJPF_RGB, &out, &out_size, TJSAMP_420,
                             quality, TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    const std::string message = TakeError(h);
    tjFree(out);
    IF_FAIL("JPEG encode failed: ", message);
  }
  std::string bytes(reinterpret_cast<const char*>(out), out_size);
  tjFree(out);
  return bytes;
}

void PeekJpegSize(const uint8_t* data, size_t size, const std::string& what, int* width,
                  int* height) {
  int subsampling = 0, colorspace = 0;
  Handle& h = Decompressor();
  const int rc = tjDecompressHeader3(h.handle, data, static_cast<unsigned long>(size), width, height,
                                     &subsampling, &colorspace);
  if (rc != 0) IF_FAIL(what, ": not a readable JPEG (", TakeError(h), ")");
  IF_REQUIRE(*width > 0 && *height > 0, what, ": JPEG header gives an empty image (", *width, "x",
             *height, ")");
}

void DecodeJpeg(const uint8_t* data, size_t size, const std::string& what, RgbImage* out, int64_t max_pixels) {
  int width = 0, height = 0;
  PeekJpegSize(data, size, what, &width, &height);
  IF_REQUIRE(int64_t{width} * height <= max_pixels, what, ": the JPEG header claims ", width, "x", height,
             " pixels, more than the ", max_pixels, " allowed (a damaged or malicious file)");
  out->width = width;
  out->height = height;
  out->pixels.resize(static_cast<size_t>(width) * height * 3);
  Handle& h = Decompressor();
  // STOPONWARNING: libjpeg treats a truncated stream as a warning and pads the
  // image with grey; for training data that is corruption, not a warning.
  const int rc = tjDecompress2(h.handle, data, static_cast<unsigned long>(size), out->pixels.data(),
                               width, 0, height, TJPF_RGB, TJFLAG_STOPONWARNING);
  if (rc != 0) IF_FAIL(what, ": corrupt or truncated JPEG (", TakeError(h), ")");
}

}  // namespace instructflip
