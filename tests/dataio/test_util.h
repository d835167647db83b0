// Helpers for dataio tests: small stores with images that encode their own
// index, so a test can tell which sample a loader returned (temp directories
// and error capture: tests/common/test_util.h).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "dataio/base/check.h"
#include "tests/common/test_util.h"
#include "dataio/jpeg_codec.h"
#include "dataio/store_writer.h"

namespace instructflip::testing {

struct DomainSpec {
  std::string name;
  int train_live = 0, train_spoof = 0, test_live = 0, test_spoof = 0;
};

// Flat-ish image whose colour encodes `tag` (R = tag % 251, G = tag / 251 % 251,
// B = a horizontal ramp so flips are visible).
inline RgbImage TaggedImage(int64_t tag, int size) {
  RgbImage image;
  image.width = image.height = size;
  image.pixels.resize(static_cast<size_t>(size) * size * 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      uint8_t* p = &image.pixels[(static_cast<size_t>(y) * size + x) * 3];
      p[0] = static_cast<uint8_t>(tag % 251);
      p[1] = static_cast<uint8_t>((tag / 251) % 251);
      p[2] = static_cast<uint8_t>(x * 255 / std::max(1, size - 1));
    }
  return image;
}

// Writes a store; sample k (in insertion order, over all domains) has tag k.
inline void MakeStore(const std::string& dir, const std::vector<DomainSpec>& domains, int size = 32,
                      bool append = false, int64_t shard_max_bytes = 256ll << 20) {
  StoreWriterOptions options;
  options.dir = dir;
  options.image_size = size;
  options.append = append;
  options.shard_max_bytes = shard_max_bytes;
  StoreWriter writer(options);
  int64_t tag = 0;
  int64_t video = 0;
  for (const DomainSpec& spec : domains) {
    const int d = writer.AddDomain(spec.name);
    const int counts[2][2] = {{spec.train_live, spec.train_spoof}, {spec.test_live, spec.test_spoof}};
    for (int split = 0; split < 2; ++split)
      for (int label = 0; label < 2; ++label)
        for (int i = 0; i < counts[split][label]; ++i, ++tag) {
          SampleAttributes a;
          a.label = static_cast<int8_t>(label);
          a.spoof_type = static_cast<int8_t>(label ? 1 + tag % 10 : 0);
          a.illumination = static_cast<int8_t>(tag % 5 - 1);
          a.environment = static_cast<int8_t>(tag % 3 - 1);
          a.camera_quality = static_cast<int8_t>(tag % 4 - 1);
          a.video_id = video + i / 2;  // two frames per video
          a.subject_id = tag / 4;
          a.split = static_cast<Split>(split);
          a.source = spec.name + "/" + std::to_string(tag) + ".jpg";
          writer.Add(d, EncodeJpeg(TaggedImage(tag, size), 95), a);
        }
    video += 1000000;
  }
  writer.Commit();
}

}  // namespace instructflip::testing
