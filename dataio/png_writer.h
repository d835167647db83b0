// 8-bit PNG files (libpng), for explanation images and cue maps.
#pragma once

#include <cstdint>
#include <string>

namespace instructflip {

// Writes `height` rows of `width` x `channels` bytes (1 = gray, 3 = RGB),
// atomically (temp file + rename). Errors name the path.
void WritePng(const std::string& path, const uint8_t* pixels, int width, int height, int channels);

}  // namespace instructflip
