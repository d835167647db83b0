#include "dataio/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace instructflip {
namespace {

// domain d has sizes[d] = {live, spoof} samples.
SampleTable MakeTable(const std::vector<std::pair<int, int>>& sizes, std::vector<int64_t>* all) {
  SampleTable t;
  for (size_t d = 0; d < sizes.size(); ++d)
    for (int label = 0; label < 2; ++label)
      for (int i = 0; i < (label ? sizes[d].second : sizes[d].first); ++i) {
        SampleAttributes a;
        a.label = static_cast<int8_t>(label);
        a.spoof_type = static_cast<int8_t>(label);
        all->push_back(t.size());
        t.Push(static_cast<int>(d), a, 0);
      }
  return t;
}

TEST(Sampler, PlainIsASeededPermutationPerEpoch) {
  std::vector<int64_t> all;
  const SampleTable t = MakeTable({{30, 70}, {5, 15}}, &all);
  SamplerOptions o;
  o.seed = 11;
  const auto e0 = BuildEpochOrder(all, t, o, 0);
  EXPECT_EQ(e0, BuildEpochOrder(all, t, o, 0));
  EXPECT_NE(e0, BuildEpochOrder(all, t, o, 1));
  o.seed = 12;
  EXPECT_NE(e0, BuildEpochOrder(all, t, o, 0));
  auto sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, all);
  o.shuffle = false;
  EXPECT_EQ(BuildEpochOrder(all, t, o, 3), all);
}

TEST(Sampler, BalancedGivesEqualDomainAndLabelShares) {
  std::vector<int64_t> all;
  // Very unequal cells: 10 live / 190 spoof, 60 live / 40 spoof, 3 live / 7 spoof.
  const SampleTable t = MakeTable({{10, 190}, {60, 40}, {3, 7}}, &all);
  SamplerOptions o;
  o.mode = SamplingMode::kBalanced;
  o.seed = 5;
  o.epoch_size = 6000;
  const auto order = BuildEpochOrder(all, t, o, 0);
  ASSERT_EQ(order.size(), 6000u);
  std::map<std::pair<int, int>, int> cell_counts;
  std::map<int64_t, int> per_sample;
  for (int64_t i : order) {
    ++cell_counts[{t.domain[i], t.label[i]}];
    ++per_sample[i];
  }
  ASSERT_EQ(cell_counts.size(), 6u);
  for (const auto& [cell, count] : cell_counts) EXPECT_EQ(count, 1000) << cell.first << "," << cell.second;
  // Oversampled cells are cycled evenly: each of the 3 live samples of domain 2
  // appears 333 or 334 times; undersampled cells never repeat a sample twice more
  // than others.
  for (int64_t i = 200 + 100; i < 303; ++i) EXPECT_NEAR(per_sample[i], 1000.0 / 3, 1) << i;
  // Balanced order is shuffled (not grouped by cell) and deterministic.
  std::set<int> early_domains;
  for (int k = 0; k < 60; ++k) early_domains.insert(t.domain[order[k]]);
  EXPECT_EQ(early_domains.size(), 3u);
  EXPECT_EQ(order, BuildEpochOrder(all, t, o, 0));
}

TEST(Sampler, BalancedDomainWithOneLabelKeepsItsDomainShare) {
  std::vector<int64_t> all;
  const SampleTable t = MakeTable({{50, 50}, {0, 20}}, &all);
  SamplerOptions o;
  o.mode = SamplingMode::kBalanced;
  const auto order = BuildEpochOrder(all, t, o, 2);  // epoch size = 120 eligible
  std::map<std::pair<int, int>, int> cells;
  for (int64_t i : order) ++cells[{t.domain[i], t.label[i]}];
  EXPECT_EQ(cells[std::make_pair(0, 0)], 30);
  EXPECT_EQ(cells[std::make_pair(0, 1)], 30);
  EXPECT_EQ(cells[std::make_pair(1, 1)], 60);
}

TEST(Sampler, RejectsBadInput) {
  SampleTable t;
  EXPECT_THROW(BuildEpochOrder({}, t, SamplerOptions{}, 0), std::runtime_error);
  EXPECT_FALSE(kSamplingModes.Find("weighted").has_value());
  EXPECT_EQ(kSamplingModes.Find("balanced"), SamplingMode::kBalanced);
}

// Two frames per video: video ids are per domain, frames 2k and 2k+1 share one.
SampleTable MakeVideoTable(const std::vector<std::pair<int, int>>& videos, std::vector<int64_t>* all) {
  SampleTable t;
  for (size_t d = 0; d < videos.size(); ++d) {
    int64_t video = 0;
    for (int label = 0; label < 2; ++label)
      for (int v = 0; v < (label ? videos[d].second : videos[d].first); ++v, ++video)
        for (int frame = 0; frame < 2; ++frame) {
          SampleAttributes a;
          a.label = static_cast<int8_t>(label);
          a.spoof_type = static_cast<int8_t>(label);
          a.video_id = video;
          all->push_back(t.size());
          t.Push(static_cast<int>(d), a, 0);
        }
  }
  return t;
}

TEST(Holdout, SplitsWholeVideosPerDomainAndLabelDeterministically) {
  std::vector<int64_t> all;
  // Domain 0: 20 live / 30 spoof videos; domain 1: 3 / 2; domain 2: 1 / 6 (a lone live video stays in training).
  const SampleTable t = MakeVideoTable({{20, 30}, {3, 2}, {1, 6}}, &all);
  Holdout h{Holdout::Part::kTraining, 0.2, 9};
  const std::vector<int64_t> training = ApplyHoldout(all, t, h);
  h.part = Holdout::Part::kValidation;
  const std::vector<int64_t> validation = ApplyHoldout(all, t, h);
  EXPECT_EQ(validation, ApplyHoldout(all, t, h)) << "not deterministic";
  // A partition of the candidates, in store order.
  std::vector<int64_t> both = training;
  both.insert(both.end(), validation.begin(), validation.end());
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, all);
  EXPECT_TRUE(std::is_sorted(validation.begin(), validation.end()));
  // Whole videos on one side; per (domain, label): round(0.2 x videos), at least 1, none of a lone video.
  std::map<std::pair<int, int64_t>, std::set<bool>> sides;
  std::map<std::pair<int, int>, std::set<int64_t>> held_out_videos;
  const std::set<int64_t> in_validation(validation.begin(), validation.end());
  for (int64_t i : all) {
    const bool held = in_validation.count(i) > 0;
    sides[{t.domain[i], t.video_id[i]}].insert(held);
    if (held) held_out_videos[{t.domain[i], t.label[i]}].insert(t.video_id[i]);
  }
  for (const auto& [video, side] : sides) EXPECT_EQ(side.size(), 1u) << "video split across sides";
  const std::map<std::pair<int, int>, size_t> expected = {{{0, 0}, 4}, {{0, 1}, 6}, {{1, 0}, 1},
                                                          {{1, 1}, 1}, {{2, 1}, 1}};
  std::map<std::pair<int, int>, size_t> got;
  for (const auto& [cell, videos] : held_out_videos) got[cell] = videos.size();
  EXPECT_EQ(got, expected);
  // Another seed holds out other videos; fraction 0 or kAll hold out nothing.
  h.seed = 10;
  EXPECT_NE(ApplyHoldout(all, t, h), validation);
  h.fraction = 0;
  EXPECT_TRUE(ApplyHoldout(all, t, h).empty());
  EXPECT_EQ(ApplyHoldout(all, t, {Holdout::Part::kAll, 0.5, 9}), all);
}

}  // namespace
}  // namespace instructflip
