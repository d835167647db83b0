// A scores CSV, the input of `instructflip metrics`: a header naming the
// columns score, label, video_id and optionally domain, sample_index and
// spoof_type (eval's scores.csv has all six; sample_index and spoof_type are
// checked, not used), in any order. Video ids are names (real datasets
// name videos, e.g. msu_real_client001); numbers are names too. Scores are
// probabilities in [0, 1]; anything else is an error naming the file and line.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "trainer/metrics.h"

namespace instructflip::launch {

// Scores per domain, in first-appearance order of the domains ("all" when the
// file has no domain column). `path` names the source in errors.
std::vector<std::pair<std::string, std::vector<ScoredSample>>> ParseScoresCsv(const std::string& text,
                                                                              const std::string& path);
std::vector<std::pair<std::string, std::vector<ScoredSample>>> ReadScoresCsv(const std::string& path);

}  // namespace instructflip::launch
