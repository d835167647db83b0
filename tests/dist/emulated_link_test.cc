// The emulated link: one message at a time, each for its ring all-reduce
// traffic over the bandwidth, and Wait() not before the link is done.
#include "dist/emulated_link.h"

#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace instructflip {
namespace {

// Two ranks as far as the link is concerned; the collectives themselves are no-ops.
class TwoRankStandIn : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string name() const override { return "stand-in"; }
  std::unique_ptr<Work> AllReduceAsync(torch::Tensor&, ReduceOp) override {
    struct Done : Work {
      void Wait() override {}
    };
    return std::make_unique<Done>();
  }
  void Broadcast(torch::Tensor&, int) override {}
  torch::Tensor AllGather(const torch::Tensor& t) override { return t; }
  void Barrier() override {}
};

TEST(EmulatedLink, MessagesQueueOnTheLinkForTheirRingTraffic) {
  TwoRankStandIn inner;
  EmulatedLinkCommunicator link(&inner, /*gigabits_per_second=*/8);  // 1 GB/s
  // 2 ranks: a ring all-reduce moves 2(n-1)/n = 1x the message per rank.
  const auto first = link.Reserve(4'000'000);                     // 4 ms
  const auto second = link.Reserve(2'000'000);                    // queued behind: +2 ms
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(second - first).count(), 2000);
  EXPECT_EQ(link.name(), "stand-in+link");

  torch::Tensor gradient = torch::zeros({1'000'000});  // 4 MB
  const auto start = EmulatedLinkCommunicator::Clock::now();
  link.AllReduceAsync(gradient, ReduceOp::kAverage)->Wait();
  // Behind the 6 ms still reserved (at most) plus its own 4 ms; at least its own 4 ms.
  EXPECT_GE(EmulatedLinkCommunicator::Clock::now() - start, std::chrono::milliseconds(4));
}

TEST(EmulatedLink, RefusesANonPositiveBandwidth) {
  TwoRankStandIn inner;
  const std::string error = testing::ErrorOf([&] { EmulatedLinkCommunicator(&inner, 0); });
  EXPECT_NE(error.find("bandwidth must be > 0 Gbit/s, got 0"), std::string::npos) << error;
}

}  // namespace
}  // namespace instructflip
