#include "dataio/producers/baseline_loader.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dataio/base/check.h"

namespace instructflip {

void SetBaselineThreads(int threads) { cv::setNumThreads(threads); }

void BaselineLoadImage(const std::string& path, int size, const AugmentParams& params,
                       const NormalizeOptions& normalize, float* out) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  IF_REQUIRE(!bgr.empty(), path, ": cv::imread failed");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::resize(rgb, rgb, cv::Size(size, size), 0, 0, cv::INTER_LINEAR);
  if (params.flip) cv::flip(rgb, rgb, 1);
  if (params.jitter) {
    for (JitterOp op : params.order) {
      if (op == JitterOp::kBrightness) {
        rgb.convertTo(rgb, -1, params.brightness, 0);
      } else if (op == JitterOp::kContrast) {
        cv::Mat grey;
        cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
        const double mean = std::round(cv::mean(grey)[0]);
        rgb.convertTo(rgb, -1, params.contrast, (1.0 - params.contrast) * mean);
      } else {
        cv::Mat grey, grey3;
        cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
        cv::cvtColor(grey, grey3, cv::COLOR_GRAY2RGB);
        cv::addWeighted(rgb, params.saturation, grey3, 1.0 - params.saturation, 0, rgb);
      }
    }
  }
  cv::Mat floats;
  rgb.convertTo(floats, CV_32FC3, 1.0 / 255.0);
  std::vector<cv::Mat> planes;
  cv::split(floats, planes);
  for (int c = 0; c < 3; ++c) {
    cv::Mat plane(size, size, CV_32F, out + static_cast<size_t>(c) * size * size);
    planes[c].convertTo(plane, CV_32F, 1.0 / normalize.std[c], -normalize.mean[c] / normalize.std[c]);
  }
}

}  // namespace instructflip
