// Face anti-spoofing metrics, with the reference's conventions
// (src/utils/statistic.py): label 1 = spoof is the positive class, score =
// P(spoof). Scores and labels are first averaged per video_id (video-level).
//
//   AUC      area under the ROC, ties counted half (sklearn roc_auc_score);
//            undefined (NaN) when only one class is present
//   EER      over thresholds 0, 1e-4, ..., 1 and 1.1, predicting spoof when
//            score >= t, with the reference's names FAR = FP / (FP + TN) (live
//            called spoof) and FRR = FN / (FN + TP) (spoof called live); the
//            LAST threshold with the smallest |FRR - FAR| is the EER threshold
//            and EER = (FAR + FRR) / 2 there
//   HTER     (FAR + FRR) / 2 at a threshold; ACC the share classified right
//   TPR@FPR=1%  the last TPR whose FPR <= 1% on sklearn's roc_curve (with its
//            drop_intermediate rule)
//   APCER / BPCER / ACER at 0.5: spoof called live / live called spoof / mean
// All values in percent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace instructflip {

// The EER's last candidate threshold, above every probability: a model whose
// scores are all equal has its EER there (everything called live).
inline constexpr double kThresholdAboveEveryScore = 1.1;

struct ScoredSample {
  double score = 0;  // P(spoof)
  int label = 0;     // 0 live, 1 spoof
  int64_t video_id = 0;
};

struct RocPoint {
  double fpr = 0, tpr = 0, threshold = 0;
};

struct DomainMetrics {
  int64_t videos = 0;
  // With one class only, every metric needing the other class is NaN: AUC,
  // EER, HTER, TPR@FPR, ACER, APCER (no spoofs) or BPCER (no lives), and with
  // no given threshold also the threshold and ACC.
  double auc = 0;
  double eer = 0;
  double eer_threshold = 0;   // threshold of the EER on this set
  double threshold = 0;       // threshold used for HTER/ACC (EER threshold, or given)
  double hter = 0;
  double acc = 0;
  double tpr_at_fpr_1pct = 0;
  double apcer = 0, bpcer = 0, acer = 0;
  std::vector<RocPoint> roc;
};

// Per-video means of score and label, in first-appearance order. A video whose
// frames disagree on the label is an error naming it.
std::vector<ScoredSample> AggregateByVideo(const std::vector<ScoredSample>& frames);

double AreaUnderRoc(const std::vector<ScoredSample>& samples);
// sklearn.metrics.roc_curve(labels, scores) with drop_intermediate=True.
std::vector<RocPoint> RocCurve(const std::vector<ScoredSample>& samples);
// EER and its threshold on the reference's grid.
std::pair<double, double> EqualErrorRate(const std::vector<ScoredSample>& samples);

// How a threshold chosen on the scored set's own labels is named in every
// table: an oracle, since a deployed model cannot know a new domain's labels.
inline constexpr char kOracleThresholdMode[] =
    "oracle: each target's own EER threshold, chosen on its labels (the reference's mode)";

// Everything for one domain (video-level). `threshold`: given (from a
// validation split) or, when empty, the set's own EER threshold (oracle, the
// reference's mode).
DomainMetrics ComputeMetrics(const std::vector<ScoredSample>& frames, std::optional<double> threshold = {});

// Mean of each metric over the domains where it is defined (not NaN).
DomainMetrics MeanMetrics(const std::vector<DomainMetrics>& domains);

// One Markdown metrics table, the same metric columns in every table (eval's
// metrics.md, `instructflip metrics`, lodo.md): the row's key columns, then
// videos | HTER | AUC | TPR@FPR=1% | EER | ACC | APCER | BPCER | ACER | threshold,
// in percent with two decimals; an undefined value (NaN: a one-class AUC, a
// mean row's threshold) shows as "–".
struct MetricsTableRow {
  std::vector<std::string> keys;
  DomainMetrics metrics;
};
std::string MarkdownMetricsTable(const std::vector<std::string>& key_headers, const std::vector<MetricsTableRow>& rows);

// {"videos", "auc", "eer", "hter", "acc", "tpr_at_fpr_1pct", "threshold",
// "apcer", "bpcer", "acer"}; NaN (an undefined AUC) as null.
nlohmann::json MetricsToJson(const DomainMetrics& m);
// Its inverse (null as NaN); a missing key throws nlohmann::json::exception.
DomainMetrics MetricsFromJson(const nlohmann::json& j);

}  // namespace instructflip
