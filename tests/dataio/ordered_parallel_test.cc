#include "dataio/base/ordered_parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dataio/base/rng.h"

namespace instructflip {
namespace {

// Sleeps a pseudo-random 0..2 ms keyed by the index, so workers finish out of order.
void Jitter(int64_t index) {
  std::this_thread::sleep_for(std::chrono::microseconds(HashKeys({17, static_cast<uint64_t>(index)}) % 2000));
}

TEST(OrderedParallel, ResultsComeBackInIndexOrderWhateverTheThreadCount) {
  for (int threads : {1, 2, 5}) {
    OrderedParallel<int64_t> squares(40, threads, 3, [](int64_t i) {
      Jitter(i);
      return i * i;
    });
    std::vector<int64_t> got;
    while (std::optional<int64_t> r = squares.Next()) got.push_back(*r);
    ASSERT_EQ(got.size(), 40u) << threads;
    for (int64_t i = 0; i < 40; ++i) EXPECT_EQ(got[i], i * i) << "threads " << threads;
    EXPECT_FALSE(squares.Next().has_value());  // stays exhausted
  }
}

TEST(OrderedParallel, NoMoreThanWindowResultsAreAheadOfTheConsumer) {
  constexpr int64_t kWindow = 3;
  std::atomic<int64_t> taken{0}, worst_lead{0};
  OrderedParallel<int64_t> results(30, 4, kWindow, [&](int64_t i) {
    const int64_t lead = i - taken.load();  // i is claimed while `taken` results were handed out
    int64_t seen = worst_lead.load();
    while (lead > seen && !worst_lead.compare_exchange_weak(seen, lead)) {}
    return i;
  });
  for (int64_t i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(300));  // a slow consumer
    ASSERT_EQ(results.Next(), i);
    taken = i + 1;
  }
  // Index i is claimed only once i - window was taken: it leads by at most window - 1 ...
  // plus one for the race between Next() returning and `taken` being updated here.
  EXPECT_LE(worst_lead.load(), kWindow);
  EXPECT_GE(worst_lead.load(), 1);  // and the producers did run ahead
}

TEST(OrderedParallel, AnErrorSurfacesAtItsIndexAfterTheEarlierResultsAndStays) {
  std::atomic<int64_t> highest_claimed{-1};
  OrderedParallel<std::string> results(100, 3, 4, [&](int64_t i) {
    int64_t seen = highest_claimed.load();
    while (i > seen && !highest_claimed.compare_exchange_weak(seen, i)) {}
    Jitter(i);
    if (i == 7 || i == 9) throw std::runtime_error("bad sample " + std::to_string(i));
    return std::to_string(i);
  });
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(results.Next(), std::to_string(i));
  for (int repeat = 0; repeat < 2; ++repeat) {
    try {
      results.Next();
      FAIL() << "expected the error of index 7";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "bad sample 7");  // the lowest failing index, never 9
    }
  }
  // Claiming stopped soon after the failure: never the whole range.
  EXPECT_LT(highest_claimed.load(), 7 + 4 + 3);
}

TEST(OrderedParallel, DroppingItEarlyJoinsTheWorkers) {
  std::atomic<int> produced{0};
  {
    OrderedParallel<int> results(1000, 4, 8, [&](int64_t) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      return ++produced;
    });
    ASSERT_TRUE(results.Next().has_value());
  }  // must not hang or run on past this point
  const int at_destruction = produced.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(produced.load(), at_destruction);
  EXPECT_LE(at_destruction, 1 + 8 + 4);
}

TEST(OrderedParallel, RunInOrderCallsConsumeInOrderAndPropagatesItsError) {
  std::vector<int64_t> seen;
  RunInOrder<int64_t>(25, 3, 5, [](int64_t i) { Jitter(i); return 2 * i; },
                      [&](int64_t i, int64_t value) {
                        EXPECT_EQ(value, 2 * i);
                        seen.push_back(i);
                      });
  ASSERT_EQ(seen.size(), 25u);
  for (int64_t i = 0; i < 25; ++i) EXPECT_EQ(seen[i], i);

  // A consumer that throws (a full disk while writing a shard) stops everything.
  EXPECT_THROW(RunInOrder<int64_t>(1000, 3, 5, [](int64_t i) { return i; },
                                   [](int64_t i, int64_t) {
                                     if (i == 3) throw std::runtime_error("disk full");
                                   }),
               std::runtime_error);
}

TEST(OrderedParallel, NothingToDoAndBadArguments) {
  OrderedParallel<int> none(0, 4, 2, [](int64_t) -> int { throw std::logic_error("never called"); });
  EXPECT_FALSE(none.Next().has_value());
  EXPECT_THROW(OrderedParallel<int>(5, 0, 2, [](int64_t) { return 0; }), Error);
  EXPECT_THROW(OrderedParallel<int>(5, 1, 0, [](int64_t) { return 0; }), Error);
  EXPECT_THROW(OrderedParallel<int>(-1, 1, 1, [](int64_t) { return 0; }), Error);
}

}  // namespace
}  // namespace instructflip
