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
  EXPECT_THROW(ParseSamplingMode("weighted"), std::runtime_error);
  EXPECT_EQ(ParseSamplingMode("balanced"), SamplingMode::kBalanced);
}

}  // namespace
}  // namespace instructflip
