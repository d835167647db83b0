// The procedural data generator: determinism, attribute validity and balance,
// domain shift, learnability of the print/replay cues, and the store it writes.
// Images are tiny (32..64 px) so the whole suite renders in well under a second.
#include "dataio/producers/synth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/jpeg_codec.h"
#include "dataio/manifest.h"
#include "dataio/schema.h"
#include "dataio/store.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

SynthOptions SmallOptions(uint64_t seed = 11) {
  SynthOptions options;
  options.domains = 4;
  options.per_domain = 100;
  options.size = 64;
  options.seed = seed;
  return options;
}

// The 4 x 100 samples at 64 px of SmallOptions(), rendered once for the suite.
const std::vector<SynthSample>& SmallSet() {
  static const std::vector<SynthSample> samples = [] {
    const SynthOptions options = SmallOptions();
    std::vector<SynthSample> out;
    for (int d = 0; d < options.domains; ++d)
      for (int i = 0; i < options.per_domain; ++i) out.push_back(RenderSynthSample(options, d, i));
    return out;
  }();
  return samples;
}

std::vector<double> Luma(const RgbImage& image) {
  std::vector<double> luma(static_cast<size_t>(image.width) * image.height);
  for (size_t i = 0; i < luma.size(); ++i)
    luma[i] = 0.299 * image.pixels[i * 3] + 0.587 * image.pixels[i * 3 + 1] + 0.114 * image.pixels[i * 3 + 2];
  return luma;
}

// Chroma high-frequency energy (Laplacian of G - (R+B)/2) relative to luma
// mid-frequency energy, over the central quarter of the image. Halftone screens
// at per-ink angles and RGB sub-pixel grids put energy there; a camera viewing a
// real face mostly does not.
double ChromaHighFrequency(const RgbImage& image) {
  const int w = image.width, h = image.height;
  const std::vector<double> luma = Luma(image);
  std::vector<double> chroma(luma.size());
  for (size_t i = 0; i < chroma.size(); ++i)
    chroma[i] = image.pixels[i * 3 + 1] - 0.5 * (image.pixels[i * 3] + image.pixels[i * 3 + 2]);
  double high = 0, mid = 0;
  for (int y = h / 4; y < 3 * h / 4; ++y)
    for (int x = w / 4; x < 3 * w / 4; ++x) {
      const int i = y * w + x;
      const double lap = 4 * chroma[i] - chroma[i - 1] - chroma[i + 1] - chroma[i - w] - chroma[i + w];
      const double gx = luma[i + 2] - luma[i - 2], gy = luma[i + 2 * w] - luma[i - 2 * w];
      high += lap * lap;
      mid += gx * gx + gy * gy;
    }
  return high / (mid + 1.0);
}

// Probability that a random positive scores above a random negative.
double Auc(const std::vector<double>& positives, const std::vector<double>& negatives) {
  double wins = 0;
  for (double p : positives)
    for (double n : negatives) wins += p > n ? 1.0 : p == n ? 0.5 : 0.0;
  return wins / (static_cast<double>(positives.size()) * negatives.size());
}

struct StyleStats {
  double red_over_blue = 0;  // colour temperature
  double green_share = 0;    // tint: G / sqrt(R * B), which temperature leaves alone
  double luma = 0;           // exposure / illumination level
  double contrast = 0;       // mean per-image luma standard deviation
};
constexpr int kStyleStats = 4;
double StyleStat(const StyleStats& s, int k) {
  const double values[kStyleStats] = {s.red_over_blue, s.green_share, s.luma, s.contrast};
  return values[k];
}

StyleStats DomainStats(const std::vector<SynthSample>& samples, int domain) {
  StyleStats stats;
  double red = 0, green = 0, blue = 0;
  int n = 0;
  for (const SynthSample& s : samples) {
    if (s.domain != domain) continue;
    const std::vector<double> luma = Luma(s.image);
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < luma.size(); ++i) {
      red += s.image.pixels[i * 3];
      green += s.image.pixels[i * 3 + 1];
      blue += s.image.pixels[i * 3 + 2];
      sum += luma[i];
      sum2 += luma[i] * luma[i];
    }
    const double mean = sum / luma.size();
    stats.luma += mean;
    stats.contrast += std::sqrt(std::max(0.0, sum2 / luma.size() - mean * mean));
    ++n;
  }
  stats.red_over_blue = red / blue;
  stats.green_share = green / std::sqrt(red * blue);
  stats.luma /= n;
  stats.contrast /= n;
  return stats;
}

void ExpectSameSample(const SynthSample& a, const SynthSample& b) {
  EXPECT_EQ(a.domain, b.domain);
  EXPECT_EQ(a.image.width, b.image.width);
  EXPECT_EQ(a.image.height, b.image.height);
  EXPECT_TRUE(a.image.pixels == b.image.pixels) << a.attributes.source;
  EXPECT_EQ(a.attributes.label, b.attributes.label);
  EXPECT_EQ(a.attributes.spoof_type, b.attributes.spoof_type);
  EXPECT_EQ(a.attributes.illumination, b.attributes.illumination);
  EXPECT_EQ(a.attributes.environment, b.attributes.environment);
  EXPECT_EQ(a.attributes.camera_quality, b.attributes.camera_quality);
  EXPECT_EQ(a.attributes.video_id, b.attributes.video_id);
  EXPECT_EQ(a.attributes.subject_id, b.attributes.subject_id);
  EXPECT_EQ(a.attributes.split, b.attributes.split);
  EXPECT_EQ(a.attributes.source, b.attributes.source);
}

TEST(Synth, SameSeedGivesIdenticalPixelsAndAttributes) {
  const SynthOptions options = SmallOptions();
  for (int d = 0; d < options.domains; ++d)
    for (int64_t i : {0, 1, 2, 17, 55, 99}) {
      const SynthSample sample = RenderSynthSample(options, d, i);
      ExpectSameSample(sample, SmallSet()[d * options.per_domain + i]);
    }
}

TEST(Synth, DifferentSeedGivesDifferentData) {
  const SynthOptions a = SmallOptions(11), b = SmallOptions(12);
  int attribute_differences = 0;
  for (int d = 0; d < a.domains; ++d)
    for (int64_t i = 0; i < 30; ++i) {
      const SynthSample x = RenderSynthSample(a, d, i), y = RenderSynthSample(b, d, i);
      EXPECT_FALSE(x.image.pixels == y.image.pixels) << "domain " << d << " index " << i;
      attribute_differences += x.attributes.spoof_type != y.attributes.spoof_type ||
                               x.attributes.illumination != y.attributes.illumination;
    }
  EXPECT_GT(attribute_differences, 20);
}

TEST(Synth, RejectsBadOptionsNamingOptionAndValue) {
  auto expect_error = [](SynthOptions options, const std::string& fragment, int domain = 0,
                         int64_t index = 0) {
    try {
      RenderSynthSample(options, domain, index);
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  SynthOptions o = SmallOptions();
  o.domains = 9;
  expect_error(o, "--domains must be in 1..8, got 9");
  o = SmallOptions();
  o.domains = 0;
  expect_error(o, "--domains must be in 1..8, got 0");
  o = SmallOptions();
  o.per_domain = 7;
  expect_error(o, "--per-domain must be in 8..");
  o = SmallOptions();
  o.size = 31;
  expect_error(o, "--size must be in 32..1024, got 31");
  o.size = 1025;
  expect_error(o, "--size must be in 32..1024, got 1025");
  o = SmallOptions();
  o.frames_per_video = 0;
  expect_error(o, "frames_per_video must be in 1..per_domain (100), got 0");
  o = SmallOptions();
  o.jpeg_quality = 101;
  expect_error(o, "jpeg_quality must be in 1..100, got 101");
  o = SmallOptions();
  o.threads = 0;
  expect_error(o, "threads must be in 1..256, got 0");
  expect_error(SmallOptions(), "domain must be in 0..3, got 4", 4);
  expect_error(SmallOptions(), "index_in_domain must be in 0..99, got 100", 0, 100);

  o = SmallOptions();
  o.out.clear();
  EXPECT_THROW(Synthesize(o), Error);
}

TEST(Synth, AttributesAreValidAndBalanced) {
  const SynthOptions options = SmallOptions();
  std::set<int> spoof_types;
  std::map<int64_t, std::set<Split>> subject_splits;
  std::map<int64_t, const SynthSample*> first_frame;
  int live = 0, test_subjects = 0;
  for (int d = 0; d < options.domains; ++d) {
    std::set<int> labels;
    for (int64_t i = 0; i < options.per_domain; ++i) {
      const SynthSample& s = SmallSet()[d * options.per_domain + i];
      const SampleAttributes& a = s.attributes;
      EXPECT_NO_THROW(ValidateAttributes(a, a.source));
      EXPECT_EQ(s.image.width, options.size);
      EXPECT_EQ(s.image.height, options.size);
      EXPECT_EQ(s.image.pixels.size(), static_cast<size_t>(options.size) * options.size * 3);
      // Every style attribute is known (the generator renders it).
      EXPECT_GE(a.illumination, 0);
      EXPECT_GE(a.environment, 0);
      EXPECT_GE(a.camera_quality, 0);
      const int64_t video = i / options.frames_per_video;
      EXPECT_EQ(a.video_id, d * 1000000 + video);
      EXPECT_EQ(a.subject_id / 1000000, d);
      char source[64];
      std::snprintf(source, sizeof(source), "synth://syn%c/v%06lld/f%lld", 'A' + d, static_cast<long long>(video),
                    static_cast<long long>(i % options.frames_per_video));
      EXPECT_EQ(a.source, source);
      labels.insert(a.label);
      live += a.label == 0;
      if (a.label == 1) spoof_types.insert(a.spoof_type);
      subject_splits[a.subject_id].insert(a.split);
      // Frames of a video share everything but the pixels.
      auto [it, first] = first_frame.emplace(a.video_id, &s);
      if (!first) {
        const SampleAttributes& f = it->second->attributes;
        EXPECT_EQ(a.subject_id, f.subject_id);
        EXPECT_EQ(a.spoof_type, f.spoof_type);
        EXPECT_EQ(a.illumination, f.illumination);
        EXPECT_EQ(a.environment, f.environment);
        EXPECT_EQ(a.camera_quality, f.camera_quality);
        EXPECT_EQ(a.split, f.split);
      }
    }
    EXPECT_EQ(labels.size(), 2u) << "domain " << d << " lacks a label";
  }
  EXPECT_GE(spoof_types.size(), 8u);
  const double live_share = live / 400.0;
  EXPECT_GT(live_share, 0.3);
  EXPECT_LT(live_share, 0.5);
  for (const auto& [subject, splits] : subject_splits) {
    EXPECT_EQ(splits.size(), 1u) << "subject " << subject << " is in both splits";
    test_subjects += *splits.begin() == Split::kTest;
  }
  const double test_share = static_cast<double>(test_subjects) / subject_splits.size();
  EXPECT_GT(test_share, 0.1);
  EXPECT_LT(test_share, 0.35);
}

TEST(Synth, FramesOfAVideoDifferSlightly) {
  const SynthOptions options = SmallOptions();
  auto mean_abs_diff = [](const RgbImage& a, const RgbImage& b) {
    double sum = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    return sum / a.pixels.size();
  };
  double within = 0, across = 0;
  int n = 0;
  for (int d = 0; d < options.domains; ++d)
    for (int64_t video = 0; video < 30; ++video) {
      const SynthSample& f0 = SmallSet()[d * options.per_domain + video * 3];
      const SynthSample& f1 = SmallSet()[d * options.per_domain + video * 3 + 1];
      const SynthSample& other = SmallSet()[d * options.per_domain + video * 3 + 3];
      EXPECT_FALSE(f0.image.pixels == f1.image.pixels);
      within += mean_abs_diff(f0.image, f1.image);
      across += mean_abs_diff(f0.image, other.image);
      ++n;
    }
  EXPECT_LT(within / n, 0.5 * across / n);
}

TEST(Synth, RenderingDoesNotDependOnOrderOrThreads) {
  // Rendering the same samples backwards and from several threads at once
  // must reproduce them byte for byte (no hidden shared state).
  const SynthOptions options = SmallOptions();
  std::vector<SynthSample> parallel(40);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 39 - t; k >= 0; k -= 4) parallel[k] = RenderSynthSample(options, k % 4, 60 + k);
    });
  for (auto& thread : threads) thread.join();
  for (int k = 0; k < 40; ++k) ExpectSameSample(parallel[k], SmallSet()[(k % 4) * options.per_domain + 60 + k]);
}

TEST(Synth, DomainsHaveDistinctStyles) {
  const SynthOptions options = SmallOptions();
  std::vector<StyleStats> stats;
  std::vector<std::array<double, 3>> mean_colour;
  for (int d = 0; d < options.domains; ++d) {
    stats.push_back(DomainStats(SmallSet(), d));
    std::array<double, 3> colour{};
    for (int i = 0; i < options.per_domain; ++i) {
      const RgbImage& image = SmallSet()[d * options.per_domain + i].image;
      for (size_t p = 0; p < image.pixels.size(); ++p) colour[p % 3] += image.pixels[p];
    }
    for (double& c : colour) c /= options.per_domain * options.size * options.size;
    mean_colour.push_back(colour);
  }
  // Every pair of domains differs in mean colour by a visible margin.
  for (int a = 0; a < options.domains; ++a)
    for (int b = a + 1; b < options.domains; ++b) {
      double largest = 0;
      for (int k = 0; k < 3; ++k) largest = std::max(largest, std::abs(mean_colour[a][k] - mean_colour[b][k]));
      EXPECT_GT(largest, 8.0) << "domains " << a << " and " << b;
    }
  // Leave-one-domain-out is a real shift: each held-out domain lies outside the
  // range of the other domains on at least one style statistic.
  for (int held_out = 0; held_out < options.domains; ++held_out) {
    bool outside = false;
    for (int k = 0; k < kStyleStats; ++k) {
      double lo = 1e30, hi = -1e30;
      for (int d = 0; d < options.domains; ++d) {
        if (d == held_out) continue;
        lo = std::min(lo, StyleStat(stats[d], k));
        hi = std::max(hi, StyleStat(stats[d], k));
      }
      const double v = StyleStat(stats[held_out], k);
      outside |= v < lo || v > hi;
    }
    std::string table;
    for (int d = 0; d < options.domains; ++d) {
      table += "\n  domain " + std::to_string(d) + ":";
      for (int k = 0; k < kStyleStats; ++k) table += " " + std::to_string(StyleStat(stats[d], k));
    }
    EXPECT_TRUE(outside) << "domain " << held_out << " is inside the others' style range"
                         << " (R/B, G share, luma, contrast):" << table;
  }
}

TEST(Synth, PrintAndReplayCuesAreLearnable) {
  // A fixed hand-made statistic must rank print/replay spoofs above live faces
  // more often than chance within each domain; it must not be perfect either,
  // or the task would be trivial.
  const SynthOptions options = SmallOptions();
  double mean_auc = 0;
  for (int d = 0; d < options.domains; ++d) {
    std::vector<double> live, spoof;
    for (int i = 0; i < options.per_domain; ++i) {
      const SynthSample& s = SmallSet()[d * options.per_domain + i];
      const int type = s.attributes.spoof_type;
      if (type == 0) live.push_back(ChromaHighFrequency(s.image));
      if (IsPrintAttack(type) || IsReplayAttack(type)) spoof.push_back(ChromaHighFrequency(s.image));
    }
    ASSERT_FALSE(live.empty());
    ASSERT_FALSE(spoof.empty());
    mean_auc += Auc(spoof, live) / options.domains;
  }
  EXPECT_GT(mean_auc, 0.65);
  EXPECT_LT(mean_auc, 0.99);
}

TEST(Synth, WritesAStoreWhoseSamplesMatchTheRendersWhateverTheThreads) {
  testing::TempDir tmp;
  SynthOptions options;
  options.domains = 3;
  options.per_domain = 20;
  options.size = 32;
  options.seed = 5;
  options.out = tmp / "one";
  options.threads = 1;
  const Manifest manifest = Synthesize(options);
  options.out = tmp / "three";
  options.threads = 3;
  Synthesize(options);

  ASSERT_EQ(manifest.domains.size(), 3u);
  EXPECT_EQ(manifest.image_size, 32);
  EXPECT_EQ(manifest.num_samples(), 60);
  EXPECT_EQ(ReadManifest(tmp / "one").num_samples(), 60);
  for (int d = 0; d < 3; ++d) {
    EXPECT_EQ(manifest.domains[d].name, std::string("syn") + char('A' + d));
    std::array<std::array<int64_t, 2>, 2> expected{};
    for (int i = 0; i < options.per_domain; ++i) {
      const SampleAttributes a = RenderSynthSample(options, d, i).attributes;
      ++expected[static_cast<int>(a.split)][a.label];
    }
    EXPECT_EQ(manifest.domains[d].counts.counts, expected) << manifest.domains[d].name;
  }

  const auto one = Store::Open(tmp / "one"), three = Store::Open(tmp / "three");
  ASSERT_EQ(one->size(), 60);
  ASSERT_EQ(three->size(), 60);
  std::vector<uint8_t> a, b;
  for (int64_t i = 0; i < 60; ++i) {
    one->ReadImageBytes(i, &a);
    three->ReadImageBytes(i, &b);
    EXPECT_TRUE(a == b) << "sample " << i << " differs between 1 and 3 threads";
    const SampleAttributes stored = one->table().Attributes(i);
    EXPECT_EQ(one->table().domain[i], i / 20);
    const SynthSample render = RenderSynthSample(options, static_cast<int>(i / 20), i % 20);
    EXPECT_EQ(stored.source, render.attributes.source);
    EXPECT_EQ(stored.video_id, render.attributes.video_id);
    EXPECT_EQ(stored.subject_id, render.attributes.subject_id);
    EXPECT_EQ(stored.spoof_type, render.attributes.spoof_type);
    EXPECT_EQ(stored.camera_quality, render.attributes.camera_quality);
    // The stored JPEG is the rendered image up to compression loss: much closer
    // to it than to the render of another video.
    RgbImage decoded;
    DecodeJpeg(a.data(), a.size(), "sample", &decoded);
    const SynthSample other = RenderSynthSample(options, static_cast<int>(i / 20), (i + 10) % 20);
    ASSERT_EQ(decoded.pixels.size(), render.image.pixels.size());
    double error = 0, other_error = 0;
    for (size_t p = 0; p < decoded.pixels.size(); ++p) {
      error += std::abs(int(decoded.pixels[p]) - int(render.image.pixels[p]));
      other_error += std::abs(int(decoded.pixels[p]) - int(other.image.pixels[p]));
    }
    EXPECT_LT(error, 0.6 * other_error) << "sample " << i;
  }
  EXPECT_TRUE(one->Verify().ok);
}

TEST(Synth, AppendAddsSyntheticDomainsToAnExistingStore) {
  testing::TempDir tmp;
  testing::MakeStore(tmp.path, {{"real", 2, 2, 1, 1}}, 32);
  SynthOptions options;
  options.domains = 2;
  options.per_domain = 8;
  options.size = 32;
  options.out = tmp.path;
  options.append = true;
  const Manifest manifest = Synthesize(options);
  ASSERT_EQ(manifest.domains.size(), 3u);
  EXPECT_EQ(manifest.domains[0].name, "real");
  EXPECT_EQ(manifest.domains[1].name, "synA");
  EXPECT_EQ(manifest.domains[2].name, "synB");
  EXPECT_EQ(manifest.num_samples(), 6 + 16);
  // A second append would re-add synA: refused, store unchanged.
  EXPECT_THROW(Synthesize(options), Error);
  EXPECT_EQ(ReadManifest(tmp.path).num_samples(), 6 + 16);
}

}  // namespace
}  // namespace instructflip
