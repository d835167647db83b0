// The FAS metrics on examples computed by hand (see the comments).
#include "trainer/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "dataio/base/check.h"
#include "tests/common/test_util.h"

namespace instructflip {
namespace {

using instructflip::testing::ErrorOf;

std::vector<ScoredSample> Videos(const std::vector<double>& live, const std::vector<double>& spoof) {
  std::vector<ScoredSample> out;
  int64_t id = 0;
  for (double s : live) out.push_back({s, 0, id++});
  for (double s : spoof) out.push_back({s, 1, id++});
  return out;
}

TEST(Metrics, HandComputedExample) {
  // live 0.12345, 0.42345; spoof 0.37345, 0.81345.
  const DomainMetrics m = ComputeMetrics(Videos({0.12345, 0.42345}, {0.37345, 0.81345}));
  // AUC: of 4 spoof/live pairs, 3 are ordered right -> 75%.
  EXPECT_DOUBLE_EQ(m.auc, 75.0);
  // |FRR - FAR| is 0 only for t in (0.37345, 0.42345]; the last grid point there is 0.4234,
  // where FAR = FRR = 1/2: EER 50%, HTER 50%, ACC 50%.
  EXPECT_NEAR(m.eer_threshold, 0.4234, 1e-12);
  EXPECT_DOUBLE_EQ(m.eer, 50.0);
  EXPECT_DOUBLE_EQ(m.hter, 50.0);
  EXPECT_DOUBLE_EQ(m.acc, 50.0);
  // At 0.5: one spoof of two called live (APCER 50%), no live called spoof (BPCER 0), ACER 25%.
  EXPECT_DOUBLE_EQ(m.apcer, 50.0);
  EXPECT_DOUBLE_EQ(m.bpcer, 0.0);
  EXPECT_DOUBLE_EQ(m.acer, 25.0);
  // ROC (sklearn): (0,0) (0,.5) (.5,.5) (.5,1) (1,1): the last TPR with FPR <= 1% is 50%.
  ASSERT_EQ(m.roc.size(), 5u);
  EXPECT_DOUBLE_EQ(m.roc[2].fpr, 0.5);
  EXPECT_DOUBLE_EQ(m.roc[2].tpr, 0.5);
  EXPECT_DOUBLE_EQ(m.tpr_at_fpr_1pct, 50.0);
  // A threshold from a validation split is used as given.
  const DomainMetrics at_half = ComputeMetrics(Videos({0.12345, 0.42345}, {0.37345, 0.81345}), 0.5);
  EXPECT_DOUBLE_EQ(at_half.threshold, 0.5);
  EXPECT_DOUBLE_EQ(at_half.hter, 25.0);  // FAR 0, FRR 1/2
  EXPECT_DOUBLE_EQ(at_half.acc, 75.0);
  EXPECT_DOUBLE_EQ(at_half.eer, 50.0);  // the EER does not depend on the given threshold
}

TEST(Metrics, TiesCountHalf) {
  // live 0.5, 0.2; spoof 0.5, 0.9: pairs 0.5/0.5 tie (1/2), three others right: 3.5/4.
  EXPECT_DOUBLE_EQ(AreaUnderRoc(Videos({0.5, 0.2}, {0.5, 0.9})), 0.875);
}

TEST(Metrics, SingleClassAndAllEqualScores) {
  // Only live videos: no spoof to detect, so AUC, EER (and its threshold), HTER,
  // TPR@FPR, APCER and ACER are undefined, not 0 (which would read as perfect);
  // BPCER (live called spoof at 0.5) is defined: 1 of 2.
  const DomainMetrics live_only = ComputeMetrics(Videos({0.3, 0.6}, {}));
  for (double undefined : {live_only.auc, live_only.eer, live_only.eer_threshold, live_only.threshold, live_only.hter,
                           live_only.acc, live_only.tpr_at_fpr_1pct, live_only.apcer, live_only.acer})
    EXPECT_TRUE(std::isnan(undefined)) << undefined;
  EXPECT_DOUBLE_EQ(live_only.bpcer, 50.0);
  // With a given threshold ACC is defined again (the live share below it).
  const DomainMetrics at_half = ComputeMetrics(Videos({0.3, 0.6}, {}), 0.5);
  EXPECT_DOUBLE_EQ(at_half.acc, 50.0);
  EXPECT_TRUE(std::isnan(at_half.hter));
  // Only spoofs: APCER is the defined one.
  const DomainMetrics spoof_only = ComputeMetrics(Videos({}, {0.2, 0.7, 0.9}));
  EXPECT_NEAR(spoof_only.apcer, 100.0 / 3, 1e-9);
  EXPECT_TRUE(std::isnan(spoof_only.bpcer) && std::isnan(spoof_only.hter));
  // All scores equal: AUC 50%; every threshold has |FRR - FAR| = 1, the last (1.1)
  // gives FAR 0, FRR 1: EER 50%.
  const DomainMetrics flat = ComputeMetrics(Videos({0.5, 0.5}, {0.5, 0.5}));
  EXPECT_DOUBLE_EQ(flat.auc, 50.0);
  EXPECT_DOUBLE_EQ(flat.eer, 50.0);
  EXPECT_DOUBLE_EQ(flat.eer_threshold, 1.1);
  // The mean leaves each undefined value out, metric by metric.
  const DomainMetrics mean = MeanMetrics({live_only, flat});
  EXPECT_DOUBLE_EQ(mean.auc, 50.0);
  EXPECT_DOUBLE_EQ(mean.eer, 50.0);
  EXPECT_DOUBLE_EQ(mean.hter, flat.hter);
  EXPECT_DOUBLE_EQ(mean.bpcer, (live_only.bpcer + flat.bpcer) / 2);
  EXPECT_EQ(mean.videos, 6);
  // Tables show "–" and say why; JSON has null.
  const std::string table = MarkdownMetricsTable({"domain"}, {{{"live"}, live_only}, {{"both"}, flat}});
  EXPECT_NE(table.find("only live or only spoof videos"), std::string::npos) << table;
  EXPECT_TRUE(MetricsToJson(live_only)["hter"].is_null());
  EXPECT_EQ(MarkdownMetricsTable({"domain"}, {{{"both"}, flat}}).find("only live"), std::string::npos);
}

// A non-finite score (a diverged model) is an error naming it; it used to hang
// the AUC's tie loop forever.
TEST(Metrics, NonFiniteScoresAreRefusedNotLoopedOn) {
  std::vector<ScoredSample> frames = Videos({0.1, 0.2}, {0.8, 0.9});
  frames[2].score = std::numeric_limits<double>::quiet_NaN();
  const std::string e = ErrorOf([&] { ComputeMetrics(frames); });
  EXPECT_NE(e.find("score 2 (video"), std::string::npos) << e;
  EXPECT_NE(e.find("not finite"), std::string::npos) << e;
  frames[2].score = std::numeric_limits<double>::infinity();
  EXPECT_NE(ErrorOf([&] { ComputeMetrics(frames); }).find("not finite"), std::string::npos);
  // The area itself terminates on NaN too (it is public).
  frames[2].score = std::numeric_limits<double>::quiet_NaN();
  AreaUnderRoc(frames);
}

TEST(Metrics, ScoresAreAveragedPerVideoFirst) {
  // Video 7 (live): frames 0.2 and 0.4 -> 0.3; video 9 (spoof): 0.9 and 0.5 -> 0.7.
  const std::vector<ScoredSample> frames = {{0.2, 0, 7}, {0.9, 1, 9}, {0.4, 0, 7}, {0.5, 1, 9}};
  const std::vector<ScoredSample> videos = AggregateByVideo(frames);
  ASSERT_EQ(videos.size(), 2u);
  EXPECT_DOUBLE_EQ(videos[0].score, 0.3);
  EXPECT_DOUBLE_EQ(videos[1].score, 0.7);
  const DomainMetrics m = ComputeMetrics(frames);
  EXPECT_EQ(m.videos, 2);
  EXPECT_DOUBLE_EQ(m.auc, 100.0);
  EXPECT_DOUBLE_EQ(m.hter, 0.0);
  // Frame-level, 0.4 (live) vs 0.5 (spoof) would still separate; but a video
  // labelled both ways is an error naming it.
  EXPECT_THROW(AggregateByVideo({{0.1, 0, 3}, {0.2, 1, 3}}), std::runtime_error);
}

}  // namespace
}  // namespace instructflip

namespace instructflip {
namespace {

TEST(Metrics, JsonRoundTripKeepsValuesAndUndefinedAuc) {
  DomainMetrics m = ComputeMetrics({{0.9, 1, 1}, {0.2, 0, 2}, {0.6, 0, 3}, {0.7, 1, 4}}, 0.5);
  m.auc = std::numeric_limits<double>::quiet_NaN();  // one class only
  const nlohmann::json j = MetricsToJson(m);
  EXPECT_TRUE(j.at("auc").is_null());
  const DomainMetrics back = MetricsFromJson(j);
  EXPECT_TRUE(std::isnan(back.auc));
  EXPECT_EQ(back.videos, m.videos);
  for (auto field : {&DomainMetrics::eer, &DomainMetrics::hter, &DomainMetrics::acc, &DomainMetrics::tpr_at_fpr_1pct,
                     &DomainMetrics::threshold, &DomainMetrics::apcer, &DomainMetrics::bpcer, &DomainMetrics::acer})
    EXPECT_EQ(back.*field, m.*field);
  nlohmann::json missing = j;
  missing.erase("hter");
  EXPECT_THROW(MetricsFromJson(missing), nlohmann::json::exception);
}

// One formatter for every Markdown metrics table: key columns, then the same
// metric columns; NaN (a one-class AUC, a mean's threshold) as a dash.
TEST(Metrics, MarkdownTableHasOneColumnOrder) {
  DomainMetrics m;
  m.videos = 12;
  m.hter = 12.5;
  m.auc = std::numeric_limits<double>::quiet_NaN();
  m.tpr_at_fpr_1pct = 40;
  m.eer = 10;
  m.acc = 87.5;
  m.apcer = 1;
  m.bpcer = 2;
  m.acer = 1.5;
  m.threshold = 0.61234;
  const std::string md = MarkdownMetricsTable({"job", "target"}, {{{"J", "synA"}, m}});
  EXPECT_EQ(md,
            "| job | target | videos | HTER | AUC | TPR@FPR=1% | EER | ACC | APCER | BPCER | ACER | threshold |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            "| J | synA | 12 | 12.50 | \u2013 | 40.00 | 10.00 | 87.50 | 1.00 | 2.00 | 1.50 | 0.6123 |\n");
  EXPECT_THROW(MarkdownMetricsTable({"job"}, {{{"J", "extra"}, m}}), Error);
}

}  // namespace
}  // namespace instructflip
