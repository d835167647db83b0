#include "dataio/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "dataio/base/check.h"
#include "dataio/base/rng.h"

namespace instructflip {
namespace {

constexpr uint64_t kPlainStream = 0x706C61696E;     // "plain"
constexpr uint64_t kBalanceStream = 0x62616C616E;   // "balan"

template <typename T>
void Shuffle(std::vector<T>* values, KeyedRng* rng) {
  for (size_t i = values->size(); i > 1; --i) std::swap((*values)[i - 1], (*values)[rng->Below(i)]);
}

// Splits `total` into parts proportional to `weights` (largest remainder,
// ties to the lower index) so the parts add up exactly.
std::vector<int64_t> Apportion(int64_t total, const std::vector<double>& weights) {
  double sum = 0;
  for (double w : weights) sum += w;
  std::vector<int64_t> parts(weights.size());
  std::vector<std::pair<double, size_t>> remainders;
  int64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = total * weights[i] / sum;
    parts[i] = static_cast<int64_t>(exact);
    assigned += parts[i];
    remainders.push_back({exact - parts[i], i});
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t k = 0; k < total - assigned; ++k) ++parts[remainders[k].second];
  return parts;
}

}  // namespace

std::vector<int64_t> BuildEpochOrder(const std::vector<int64_t>& eligible, const SampleTable& table,
                                     const SamplerOptions& options, int64_t epoch) {
  IF_REQUIRE(!eligible.empty(), "no samples to sample from");
  IF_REQUIRE(epoch >= 0, "epoch must be >= 0, got ", epoch);
  if (options.mode == SamplingMode::kPlain) {
    std::vector<int64_t> order = eligible;
    if (options.shuffle) {
      KeyedRng rng(HashKeys({options.seed, static_cast<uint64_t>(epoch), kPlainStream}));
      Shuffle(&order, &rng);
    }
    return order;
  }

  // Balanced: group into (domain, label) cells, in a fixed (sorted) cell order.
  std::map<std::pair<int, int>, std::vector<int64_t>> cells;
  std::map<int, int> labels_per_domain;
  for (int64_t i : eligible) {
    auto& cell = cells[{table.domain[i], table.label[i]}];
    if (cell.empty()) ++labels_per_domain[table.domain[i]];
    cell.push_back(i);
  }
  std::vector<double> weights;
  for (const auto& [key, members] : cells)
    weights.push_back(1.0 / (labels_per_domain.size() * labels_per_domain[key.first]));
  const int64_t epoch_size =
      options.epoch_size > 0 ? options.epoch_size : static_cast<int64_t>(eligible.size());
  const std::vector<int64_t> quotas = Apportion(epoch_size, weights);

  std::vector<int64_t> order;
  order.reserve(epoch_size);
  size_t cell_index = 0;
  for (const auto& [key, members] : cells) {
    int64_t remaining = quotas[cell_index++];
    // Cycle through fresh permutations of the cell until its quota is met.
    for (uint64_t round = 0; remaining > 0; ++round) {
      std::vector<int64_t> permutation = members;
      KeyedRng rng(HashKeys({options.seed, static_cast<uint64_t>(epoch), kBalanceStream,
                             static_cast<uint64_t>(key.first), static_cast<uint64_t>(key.second), round}));
      Shuffle(&permutation, &rng);
      const int64_t take = std::min<int64_t>(permutation.size(), remaining);
      order.insert(order.end(), permutation.begin(), permutation.begin() + take);
      remaining -= take;
    }
  }
  KeyedRng rng(HashKeys({options.seed, static_cast<uint64_t>(epoch), kBalanceStream}));
  Shuffle(&order, &rng);
  return order;
}

std::vector<int64_t> ApplyHoldout(const std::vector<int64_t>& candidates, const SampleTable& table,
                                  const Holdout& holdout) {
  if (holdout.part == Holdout::Part::kAll) return candidates;
  // (domain, label) -> its videos, ordered by their hash.
  std::map<std::pair<int32_t, int8_t>, std::map<uint64_t, int64_t>> cells;
  for (int64_t i : candidates) {
    const uint64_t h = HashKeys({holdout.seed, 0x686f6c646f7574ull, static_cast<uint64_t>(table.domain[i]),
                                 static_cast<uint64_t>(table.video_id[i])});
    cells[{table.domain[i], table.label[i]}].emplace(h, table.video_id[i]);
  }
  std::set<std::pair<int32_t, int64_t>> held_out;  // (domain, video_id)
  if (holdout.fraction > 0)
    for (const auto& [cell, videos] : cells) {
      if (videos.size() < 2) continue;  // keep a lone video for training
      const size_t count = std::max<size_t>(1, std::llround(holdout.fraction * videos.size()));
      auto it = videos.begin();
      for (size_t k = 0; k < std::min(count, videos.size() - 1); ++k, ++it) held_out.insert({cell.first, it->second});
    }
  std::vector<int64_t> out;
  for (int64_t i : candidates) {
    const bool is_held_out = held_out.count({table.domain[i], table.video_id[i]}) > 0;
    if (is_held_out == (holdout.part == Holdout::Part::kValidation)) out.push_back(i);
  }
  return out;
}

}  // namespace instructflip
