// Progress (dataio/base/progress.h): when updates are shown, and what they say.
#include "dataio/base/progress.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace instructflip {
namespace {

TEST(Progress, ShowsEveryIntervalAndClosesOnlyWorkItShowed) {
  std::vector<ProgressUpdate> shown;
  auto record = [&](const ProgressUpdate& u) { shown.push_back(u); };
  {
    Progress p("synth", "images", 3, {record, 0.0});  // every update
    p.Advance();
    p.Advance(2);
  }  // the destructor closes it
  ASSERT_EQ(shown.size(), 3u);
  EXPECT_EQ(shown[0].done, 1);
  EXPECT_EQ(shown[1].done, 3);
  EXPECT_FALSE(shown[1].final);
  EXPECT_TRUE(shown[2].final);
  EXPECT_EQ(shown[2].total, 3);
  EXPECT_EQ(ProgressText(shown[2]).rfind("synth: 3/3 images, done in ", 0), 0u) << ProgressText(shown[2]);
  shown.clear();
  {
    Progress quick("ingest", "inputs", 100, {record, 10.0});  // quick work: silent, also at the end
    for (int i = 0; i < 100; ++i) quick.Advance();
  }
  EXPECT_TRUE(shown.empty());
  {
    Progress none("eval", "batches", 5, {});  // no sink: counts, shows nothing
    none.Set(5);
  }
  // An update halfway: the rate and the time left follow from the elapsed time.
  ProgressUpdate u{"eval synA", "batches", 50, 200, 10.0, 5.0, 30.0, false};
  EXPECT_EQ(ProgressText(u), "eval synA: 50/200 batches, 5.00/s, ETA 30 s");
  u.rate = 250;
  EXPECT_EQ(ProgressText(u), "eval synA: 50/200 batches, 250/s, ETA 30 s");
}

TEST(Progress, WorkersMayAdvanceAtOnce) {
  int64_t last = 0, finals = 0;
  {
    Progress p("verify", "samples", 4000, {[&](const ProgressUpdate& u) {
                                             last = u.done;
                                             finals += u.final;
                                           },
                                           0.0});
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t)
      workers.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) p.Advance();
      });
    for (std::thread& w : workers) w.join();
    p.Finish();
    p.Finish();
  }
  EXPECT_EQ(last, 4000);
  EXPECT_EQ(finals, 1);
}

}  // namespace
}  // namespace instructflip
