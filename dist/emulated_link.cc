#include "dist/emulated_link.h"

#include <algorithm>
#include <thread>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

class LinkWork : public Work {
 public:
  LinkWork(std::unique_ptr<Work> inner, EmulatedLinkCommunicator::Clock::time_point done)
      : inner_(std::move(inner)), done_(done) {}
  void Wait() override {
    inner_->Wait();
    std::this_thread::sleep_until(done_);
  }

 private:
  std::unique_ptr<Work> inner_;
  EmulatedLinkCommunicator::Clock::time_point done_;
};

}  // namespace

EmulatedLinkCommunicator::EmulatedLinkCommunicator(Communicator* inner, double gigabits_per_second)
    : inner_(inner), bytes_per_second_(gigabits_per_second * 1e9 / 8) {
  IF_REQUIRE(gigabits_per_second > 0, "emulated link: bandwidth must be > 0 Gbit/s, got ", gigabits_per_second);
}

EmulatedLinkCommunicator::Clock::time_point EmulatedLinkCommunicator::Reserve(int64_t bytes) {
  const int n = size();
  const double traffic = n > 1 ? 2.0 * (n - 1) / n * double(bytes) : 0.0;
  const auto occupied = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(traffic / bytes_per_second_));
  std::lock_guard<std::mutex> lock(mutex_);
  link_free_ = std::max(Clock::now(), link_free_) + occupied;
  return link_free_;
}

std::unique_ptr<Work> EmulatedLinkCommunicator::AllReduceAsync(torch::Tensor& tensor, ReduceOp op) {
  const Clock::time_point done = Reserve(tensor.nbytes());
  return std::make_unique<LinkWork>(inner_->AllReduceAsync(tensor, op), done);
}

}  // namespace instructflip
