// The loader benchmark's baseline: what a straightforward pipeline does with
// the same images stored as individual .jpg files: cv::imread one by one, then
// the same train transforms written with OpenCV calls (resize, flip, jitter in
// the same order with the same factors, normalise, HWC -> CHW). Compiled only
// when OpenCV is available.
#pragma once

#include <string>

#include "dataio/augment.h"

namespace instructflip {

// OpenCV parallelises some calls internally; the baseline is measured on one
// thread, like the loader's per-thread figure.
void SetBaselineThreads(int threads);

// Reads `path`, applies `params` at `size` x `size`, writes (3, size, size) floats.
void BaselineLoadImage(const std::string& path, int size, const AugmentParams& params,
                       const NormalizeOptions& normalize, float* out);

}  // namespace instructflip
