// The communicator of a one-process job: every collective is the identity.
#include "dist/communicator.h"

namespace instructflip {
namespace {

class DoneWork : public Work {
 public:
  void Wait() override {}
};

class SingleProcessCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  std::unique_ptr<Work> AllReduceAsync(torch::Tensor&, ReduceOp) override { return std::make_unique<DoneWork>(); }
  void Broadcast(torch::Tensor&, int) override {}
  torch::Tensor AllGather(const torch::Tensor& tensor) override { return tensor.clone(); }
  void Barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> MakeSingleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace instructflip
