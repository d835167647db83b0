// The global sample order of an epoch, a pure function of (seed, epoch, the
// eligible samples): it never depends on the world size, so a run resumed on a
// different number of ranks continues the same sequence.
//
// * plain:    a seeded permutation of the eligible samples (or their store order
//             when shuffle is off, for evaluation).
// * balanced: equal shares per domain and, inside each domain, equal live and
//             spoof shares (cells (domain, label); a domain with only one label
//             gives its whole share to it). Quotas come from the epoch size by
//             largest remainder; a cell smaller than its quota is cycled through
//             fresh permutations (oversampling), a larger one is subsampled.
//             This is what the reference's BalanceDataset intends; there the
//             per-class filters are overwritten, so it samples uniformly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataio/base/choices.h"
#include "dataio/shard_file.h"

namespace instructflip {

enum class SamplingMode { kPlain, kBalanced };
inline const Choices<SamplingMode> kSamplingModes{{"plain", SamplingMode::kPlain}, {"balanced", SamplingMode::kBalanced}};

struct SamplerOptions {
  SamplingMode mode = SamplingMode::kPlain;
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t epoch_size = 0;  // balanced: samples per epoch (0 = number of eligible samples)
};

// The validation hold-out of the source domains (honest thresholds, see
// trainer/README.md): in each (domain, label) cell with at least two videos,
// round(fraction x videos) of them, at least one, are held out, chosen by a
// hash of (seed, domain, video_id). All frames of a video fall on the same
// side, and the choice is a pure function of the candidate samples and the seed.
struct Holdout {
  enum class Part { kAll, kTraining, kValidation };
  Part part = Part::kAll;  // kTraining: without the held-out videos; kValidation: only them
  double fraction = 0;     // share of videos held out (0: none)
  uint64_t seed = 0;
};

// Filters `candidates` (store indices) to the requested part.
std::vector<int64_t> ApplyHoldout(const std::vector<int64_t>& candidates, const SampleTable& table,
                                  const Holdout& holdout);

// `eligible`: store indices (ascending) that pass the domain/split filters.
std::vector<int64_t> BuildEpochOrder(const std::vector<int64_t>& eligible, const SampleTable& table,
                                     const SamplerOptions& options, int64_t epoch);

}  // namespace instructflip
