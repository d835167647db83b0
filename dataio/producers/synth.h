// Procedural face anti-spoofing data: `instructflip synth` writes a meta-domain
// store of synthetic face-like images (no real people) with live and spoof
// classes, so the trainer and its tests run without any licensed data set.
// Every domain ("synA", "synB", ...) has its own camera/lighting style, so a
// held-out domain is a real domain shift. Output is a pure function of the
// options (thread count excluded): same options, byte-identical store.
#pragma once

#include <cstdint>
#include <string>

#include "dataio/base/progress.h"
#include "dataio/jpeg_codec.h"
#include "dataio/manifest.h"
#include "dataio/schema.h"

namespace instructflip {

struct SynthOptions {
  std::string out;           // store directory
  int domains = 4;           // 1..8
  int per_domain = 200;      // samples (frames) per domain, >= 8
  int size = 224;            // image side, 32..1024
  uint64_t seed = 0;
  int frames_per_video = 3;  // frames sharing a video_id
  int jpeg_quality = 90;     // default; each domain may lower it as part of its style (never below 60)
  int threads = 2;           // render+encode in parallel, add to the store in a deterministic order
  bool append = false;       // StoreWriterOptions::append
  ProgressSink progress;     // images rendered (dataio/base/progress.h); empty: none
};

// Writes the store described by `options` and returns its committed manifest.
// Domain names are "synA", "synB", ... in index order. Throws instructflip::Error
// naming the option and value on bad options.
Manifest Synthesize(const SynthOptions& options);

// One sample as Synthesize renders it (pixels before JPEG encoding), without
// writing a store. `domain` in 0..domains-1, `index_in_domain` in 0..per_domain-1.
struct SynthSample {
  RgbImage image;
  SampleAttributes attributes;
  int domain = 0;
};
SynthSample RenderSynthSample(const SynthOptions& options, int domain, int64_t index_in_domain);

}  // namespace instructflip
