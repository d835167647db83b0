#include "trainer/metrics.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iterator>
#include <sstream>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

struct Rates {
  double far = 0, frr = 0, acc = 0;  // fractions
};

Rates RatesAt(const std::vector<ScoredSample>& samples, double threshold) {
  int64_t tp = 0, tn = 0, fp = 0, fn = 0;
  for (const ScoredSample& s : samples) {
    const bool spoof = s.score >= threshold;
    if (s.label == 1) (spoof ? tp : fn)++;
    else (spoof ? fp : tn)++;
  }
  Rates r;
  r.far = fp + tn > 0 ? double(fp) / (fp + tn) : 0.0;
  r.frr = fn + tp > 0 ? double(fn) / (fn + tp) : 0.0;
  r.acc = double(tp + tn) / std::max<int64_t>(1, tp + tn + fp + fn);
  return r;
}

}  // namespace

std::vector<ScoredSample> AggregateByVideo(const std::vector<ScoredSample>& frames) {
  std::vector<ScoredSample> videos;
  std::unordered_map<int64_t, size_t> index;
  std::vector<int64_t> counts;
  for (const ScoredSample& f : frames) {
    auto [it, inserted] = index.emplace(f.video_id, videos.size());
    if (inserted) {
      videos.push_back({0.0, f.label, f.video_id});
      counts.push_back(0);
    }
    ScoredSample& v = videos[it->second];
    IF_REQUIRE(v.label == f.label, "video ", f.video_id, " has frames labelled both live and spoof");
    v.score += f.score;
    ++counts[it->second];
  }
  for (size_t i = 0; i < videos.size(); ++i) videos[i].score /= counts[i];
  return videos;
}

double AreaUnderRoc(const std::vector<ScoredSample>& samples) {
  // Mann-Whitney U with average ranks for ties: ties count half, as sklearn.
  std::vector<size_t> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return samples[a].score < samples[b].score; });
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;  // from i + 1: a NaN (equal to nothing) must still advance
    while (j < order.size() && samples[order[j]].score == samples[order[i]].score) ++j;
    const double average_rank = (i + 1 + j) / 2.0;  // ranks i+1 .. j
    for (size_t k = i; k < j; ++k)
      if (samples[order[k]].label == 1) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(samples.size()) - positives;
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  return (positive_rank_sum - positives * (positives + 1) / 2.0) / (double(positives) * negatives);
}

std::vector<RocPoint> RocCurve(const std::vector<ScoredSample>& samples) {
  // Distinct scores in decreasing order; cumulative true/false positives.
  std::vector<ScoredSample> sorted = samples;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  std::vector<double> fps, tps, thresholds;
  double tp = 0, fp = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    (sorted[i].label == 1 ? tp : fp) += 1;
    if (i + 1 == sorted.size() || sorted[i + 1].score != sorted[i].score) {
      fps.push_back(fp);
      tps.push_back(tp);
      thresholds.push_back(sorted[i].score);
    }
  }
  // drop_intermediate: keep the ends and every point where the curve bends.
  std::vector<size_t> keep;
  for (size_t i = 0; i < fps.size(); ++i) {
    const bool end = i == 0 || i + 1 == fps.size();
    const bool bend = !end && ((fps[i + 1] - 2 * fps[i] + fps[i - 1]) != 0 || (tps[i + 1] - 2 * tps[i] + tps[i - 1]) != 0);
    if (end || bend) keep.push_back(i);
  }
  std::vector<RocPoint> roc{{0.0, 0.0, std::numeric_limits<double>::infinity()}};  // sklearn's added first point
  const double positives = tp, negatives = fp;
  for (size_t i : keep)
    roc.push_back({negatives > 0 ? fps[i] / negatives : std::numeric_limits<double>::quiet_NaN(),
                   positives > 0 ? tps[i] / positives : std::numeric_limits<double>::quiet_NaN(), thresholds[i]});
  return roc;
}

std::pair<double, double> EqualErrorRate(const std::vector<ScoredSample>& samples) {
  double best_gap = std::numeric_limits<double>::infinity(), eer = 0, threshold = 0;
  auto consider = [&](double t) {
    const Rates r = RatesAt(samples, t);
    const double gap = std::abs(r.frr - r.far);
    if (gap <= best_gap) {  // "<=": the last minimum, as the reference
      best_gap = gap;
      eer = (r.far + r.frr) / 2;
      threshold = t;
    }
  };
  for (int i = 0; i <= 10000; ++i) consider(i * 1e-4);
  consider(kThresholdAboveEveryScore);
  return {eer, threshold};
}

DomainMetrics ComputeMetrics(const std::vector<ScoredSample>& frames, std::optional<double> threshold) {
  IF_REQUIRE(!frames.empty(), "metrics: no scores");
  for (size_t i = 0; i < frames.size(); ++i)
    IF_REQUIRE(std::isfinite(frames[i].score), "metrics: score ", i, " (video ", frames[i].video_id, ") is ",
               frames[i].score, ", not a number: the model's output is not finite (a diverged checkpoint?)");
  IF_REQUIRE(!threshold || std::isfinite(*threshold), "metrics: the threshold is not a number");
  const std::vector<ScoredSample> videos = AggregateByVideo(frames);
  DomainMetrics m;
  m.videos = static_cast<int64_t>(videos.size());
  m.auc = 100 * AreaUnderRoc(videos);
  const auto [eer, eer_threshold] = EqualErrorRate(videos);
  m.eer = 100 * eer;
  m.eer_threshold = eer_threshold;
  m.threshold = threshold.value_or(eer_threshold);
  const Rates at = RatesAt(videos, m.threshold);
  m.hter = 100 * (at.far + at.frr) / 2;
  m.acc = 100 * at.acc;
  m.roc = RocCurve(videos);
  m.tpr_at_fpr_1pct = 0;
  for (const RocPoint& p : m.roc)
    if (p.fpr <= 0.01) m.tpr_at_fpr_1pct = 100 * p.tpr;  // the last one with FPR <= 1%
  const Rates half = RatesAt(videos, 0.5);
  m.apcer = 100 * half.frr;  // spoof called live
  m.bpcer = 100 * half.far;  // live called spoof
  m.acer = (m.apcer + m.bpcer) / 2;

  // One class only: every rate over the missing class is undefined, and with it
  // the EER, its threshold, HTER and TPR@FPR; they are NaN (null, "–"), not 0.
  const bool has_live = std::any_of(videos.begin(), videos.end(), [](const auto& v) { return v.label == 0; });
  const bool has_spoof = std::any_of(videos.begin(), videos.end(), [](const auto& v) { return v.label == 1; });
  if (!has_live || !has_spoof) {
    constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();
    m.eer = m.eer_threshold = m.hter = m.tpr_at_fpr_1pct = m.acer = kUndefined;
    if (!threshold) m.threshold = m.acc = kUndefined;  // no EER threshold to classify at
    (has_live ? m.apcer : m.bpcer) = kUndefined;
  }
  return m;
}

DomainMetrics MeanMetrics(const std::vector<DomainMetrics>& domains) {
  DomainMetrics mean;
  for (const DomainMetrics& d : domains) mean.videos += d.videos;
  // Each metric over the domains where it is defined (NaN: one class only).
  auto average = [&](double DomainMetrics::*metric) {
    double sum = 0;
    int count = 0;
    for (const DomainMetrics& d : domains)
      if (!std::isnan(d.*metric)) sum += d.*metric, ++count;
    mean.*metric = count > 0 ? sum / count : std::numeric_limits<double>::quiet_NaN();
  };
  for (double DomainMetrics::*metric : {&DomainMetrics::auc, &DomainMetrics::eer, &DomainMetrics::hter,
                                        &DomainMetrics::acc, &DomainMetrics::tpr_at_fpr_1pct, &DomainMetrics::apcer,
                                        &DomainMetrics::bpcer, &DomainMetrics::acer})
    average(metric);
  mean.eer_threshold = mean.threshold = std::numeric_limits<double>::quiet_NaN();
  return mean;
}

nlohmann::json MetricsToJson(const DomainMetrics& m) {
  auto number = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"videos", m.videos},         {"auc", number(m.auc)},     {"eer", number(m.eer)},
          {"hter", number(m.hter)},     {"acc", number(m.acc)},     {"tpr_at_fpr_1pct", number(m.tpr_at_fpr_1pct)},
          {"threshold", number(m.threshold)}, {"apcer", number(m.apcer)}, {"bpcer", number(m.bpcer)},
          {"acer", number(m.acer)}};
}

DomainMetrics MetricsFromJson(const nlohmann::json& j) {
  auto number = [&](const char* key) {
    return j.at(key).is_null() ? std::numeric_limits<double>::quiet_NaN() : j.at(key).get<double>();
  };
  DomainMetrics m;
  m.videos = j.at("videos").get<int64_t>();
  m.auc = number("auc");
  m.eer = number("eer");
  m.hter = number("hter");
  m.acc = number("acc");
  m.tpr_at_fpr_1pct = number("tpr_at_fpr_1pct");
  m.threshold = number("threshold");
  m.apcer = number("apcer");
  m.bpcer = number("bpcer");
  m.acer = number("acer");
  return m;
}

std::string MarkdownMetricsTable(const std::vector<std::string>& key_headers, const std::vector<MetricsTableRow>& rows) {
  static const char* const kMetricHeaders[] = {"videos", "HTER", "AUC", "TPR@FPR=1%", "EER",
                                               "ACC",    "APCER", "BPCER", "ACER",     "threshold"};
  std::ostringstream md;
  md << "|";
  for (const std::string& h : key_headers) md << " " << h << " |";
  for (const char* h : kMetricHeaders) md << " " << h << " |";
  md << "\n|";
  for (size_t i = 0; i < key_headers.size() + std::size(kMetricHeaders); ++i) md << "---|";
  md << "\n";
  auto value = [&](double v, int precision) {
    if (std::isnan(v)) {
      md << " \u2013 |";
    } else {
      md << " " << std::fixed << std::setprecision(precision) << v << " |";
    }
  };
  bool undefined = false;  // some domain lacks a class
  for (const MetricsTableRow& row : rows) {
    IF_REQUIRE(row.keys.size() == key_headers.size(), "metrics table: ", row.keys.size(), " key cells for ",
               key_headers.size(), " key columns");
    undefined = undefined || std::isnan(row.metrics.hter);
    md << "|";
    for (const std::string& k : row.keys) md << " " << k << " |";
    const DomainMetrics& m = row.metrics;
    md << " " << m.videos << " |";
    for (double v : {m.hter, m.auc, m.tpr_at_fpr_1pct, m.eer, m.acc, m.apcer, m.bpcer, m.acer}) value(v, 2);
    value(m.threshold, 4);
    md << "\n";
  }
  if (undefined)
    md << "\n\u2013: undefined; a domain with only live or only spoof videos has no EER, HTER, AUC or TPR@FPR, "
          "and a mean row averages each metric over the domains where it is defined.\n";
  return md.str();
}

}  // namespace instructflip
