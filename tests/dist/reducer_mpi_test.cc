// Run under `mpirun -np 2`. The MPI communicator and the bucketed reducer:
// averaged gradients equal one process's full-batch gradients, buckets are
// launched while backward still runs, accumulation communicates once,
// unused parameters do not hang, replicas are broadcast and checked, and a
// collective that a peer never joins times out naming the operation.
#include <mpi.h>

#include <gtest/gtest.h>

#include <thread>

#include "dataio/base/check.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_runtime.h"
#include "dist/reducer.h"

namespace instructflip {
namespace {

std::unique_ptr<MpiCommunicator> MakeComm(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, timeout);
}

// A small MLP with an unused parameter; identical on every rank (seeded).
struct Net : torch::nn::Module {
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::Tensor unused;
  Net() {
    torch::manual_seed(11);
    a = register_module("a", torch::nn::Linear(8, 64));
    b = register_module("b", torch::nn::Linear(64, 64));
    c = register_module("c", torch::nn::Linear(64, 3));
    unused = register_parameter("unused", torch::ones({5}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::tanh(b(torch::relu(a(x))))); }
};

torch::Tensor Batch(int64_t rows, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({rows, 8});
}

TEST(MpiCommunicator, CollectivesAgree) {
  auto comm = MakeComm();
  ASSERT_EQ(comm->size(), 2);
  torch::Tensor t = torch::full({3}, comm->rank() + 1.0f);
  comm->AllReduce(t, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(t, torch::full({3}, 3.0f)));
  comm->AllReduce(t, ReduceOp::kAverage);
  EXPECT_TRUE(torch::equal(t, torch::full({3}, 3.0f)));
  torch::Tensor b = torch::full({2}, comm->rank() == 0 ? 7.0 : -1.0, torch::kFloat64);
  comm->Broadcast(b, 0);
  EXPECT_TRUE(torch::equal(b, torch::full({2}, 7.0, torch::kFloat64)));
  // Different row counts per rank, gathered in rank order.
  torch::Tensor mine = torch::full({comm->rank() + 1, 2}, static_cast<int64_t>(comm->rank()), torch::kInt64);
  const torch::Tensor all = comm->AllGather(mine);
  ASSERT_EQ(all.size(0), 3);
  EXPECT_EQ(all[0][0].item<int64_t>(), 0);
  EXPECT_EQ(all[2][1].item<int64_t>(), 1);
  comm->Barrier();
}

// Gradients of the mean loss over a full batch of 16 on one process equal the
// averaged gradients of two ranks with 8 rows each.
TEST(GradientReducer, TwoRanksMatchOneProcessFullBatch) {
  auto comm = MakeComm();
  Net reference;
  const torch::Tensor full = Batch(16, 5);
  reference.forward(full).pow(2).mean().backward();

  Net net;
  ReducerOptions options;
  options.first_bucket_bytes = 256;  // several buckets even for this small net
  options.bucket_bytes = 4096;
  GradientReducer reducer(net.parameters(), comm.get(), options);
  EXPECT_GT(reducer.num_buckets(), 2);
  const torch::Tensor loss = net.forward(full.narrow(0, 8 * comm->rank(), 8)).pow(2).mean();
  reducer.Prepare(/*sync=*/true, loss);
  loss.backward();
  reducer.Finalize();
  const auto ref = reference.named_parameters(), got = net.named_parameters();
  for (const auto& item : ref) {
    const torch::Tensor& expected = item.value().grad();
    const torch::Tensor& actual = got[item.key()].grad();
    if (!expected.defined()) {  // the unused parameter: zeros after reduction
      EXPECT_TRUE(torch::equal(actual, torch::zeros_like(actual))) << item.key();
      continue;
    }
    EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-6)) << item.key();
  }
  // Every bucket went out before backward returned, the unused parameter's too.
  EXPECT_EQ(reducer.last_stats().launched_in_backward, reducer.num_buckets());
  EXPECT_EQ(reducer.last_stats().launched_in_finalize, 0);
  EXPECT_EQ(reducer.last_stats().unused_parameters, 1);
}

// As the Q-Former's last text feed-forward: a parameter registered last (so in
// the first bucket) that the loss never uses must not hold every bucket back.
TEST(GradientReducer, UnusedParameterInTheFirstBucketDoesNotHoldBackTheOthers) {
  auto comm = MakeComm();
  struct Tail : torch::nn::Module {
    std::shared_ptr<Net> body = register_module("body", std::make_shared<Net>());
    torch::nn::Linear unused_head = register_module("unused_head", torch::nn::Linear(64, 64));
  } model;
  ReducerOptions options;
  options.first_bucket_bytes = 256;
  options.bucket_bytes = 4096;
  GradientReducer reducer(model.parameters(), comm.get(), options);
  ASSERT_GT(reducer.num_buckets(), 2);
  const torch::Tensor loss = model.body->forward(Batch(4, comm->rank())).sum();
  reducer.Prepare(true, loss);
  loss.backward();
  EXPECT_EQ(reducer.last_stats().unused_parameters, 3);  // unused_head's weight and bias, body's `unused`
  EXPECT_EQ(reducer.last_stats().launched_in_finalize, 0);
  reducer.Finalize();
  EXPECT_TRUE(torch::equal(model.unused_head->weight.grad(), torch::zeros({64, 64})));
}

TEST(GradientReducer, AccumulationCommunicatesOnceAndMatchesTheWholeWindow) {
  auto comm = MakeComm();
  Net reference;
  const torch::Tensor full = Batch(32, 9);
  reference.forward(full).pow(2).mean().backward();

  Net net;
  GradientReducer reducer(net.parameters(), comm.get(), ReducerOptions{});
  // Two micro-steps of 8 rows per rank; the loss is divided by the window.
  for (int micro = 0; micro < 2; ++micro) {
    const torch::Tensor rows = full.narrow(0, 16 * comm->rank() + 8 * micro, 8);
    const torch::Tensor loss = net.forward(rows).pow(2).mean() / 2;
    reducer.Prepare(/*sync=*/micro == 1, loss);
    loss.backward();
    reducer.Finalize();
  }
  for (const auto& item : reference.named_parameters()) {
    if (!item.value().grad().defined()) continue;
    EXPECT_TRUE(torch::allclose(net.named_parameters()[item.key()].grad(), item.value().grad(), 1e-5, 1e-6))
        << item.key();
  }
}

TEST(GradientReducer, WithoutOverlapEveryBucketWaitsForFinalize) {
  auto comm = MakeComm();
  Net net;
  ReducerOptions options;
  options.first_bucket_bytes = 256;
  options.bucket_bytes = 4096;
  options.overlap = false;
  GradientReducer reducer(net.parameters(), comm.get(), options);
  const torch::Tensor loss = net.forward(Batch(4, comm->rank())).sum();
  reducer.Prepare(true, loss);
  loss.backward();
  reducer.Finalize();
  EXPECT_EQ(reducer.last_stats().launched_in_backward, 0);
  EXPECT_EQ(reducer.last_stats().launched_in_finalize, reducer.num_buckets());
}

TEST(GradientReducer, RankDependentGraphsDoNotHang) {
  // Rank 1's loss skips layer c entirely: its c gradients arrive at Finalize.
  auto comm = MakeComm(std::chrono::seconds(20));
  Net net;
  ReducerOptions options;
  options.first_bucket_bytes = 256;
  options.bucket_bytes = 2048;
  GradientReducer reducer(net.parameters(), comm.get(), options);
  const torch::Tensor x = Batch(4, 3);
  const torch::Tensor loss = comm->rank() == 0 ? net.forward(x).sum() : torch::relu(net.a(x)).sum();
  reducer.Prepare(true, loss);
  loss.backward();
  reducer.Finalize();
  EXPECT_EQ(reducer.last_stats().unused_parameters, comm->rank() == 0 ? 1 : 5);  // + b and c on rank 1
  // c's gradient is rank 0's divided by two ranks.
  Net alone;
  alone.forward(x).sum().backward();
  EXPECT_TRUE(torch::allclose(net.c->weight.grad(), alone.c->weight.grad() / 2, 1e-5, 1e-6));
}

TEST(Replicas, BroadcastThenCheckAndDetectDivergence) {
  auto comm = MakeComm();
  torch::manual_seed(100 + comm->rank());  // different on purpose
  torch::nn::Linear layer(4, 4);
  std::vector<torch::Tensor> params = layer->parameters();
  BroadcastParameters(params, comm.get());
  EXPECT_NO_THROW(CheckParametersConsistent(params, comm.get(), "at start"));
  if (comm->rank() == 1) {
    torch::NoGradGuard no_grad;
    params[0].add_(1e-3);
  }
  try {
    CheckParametersConsistent(params, comm.get(), "after resume");
    FAIL() << "divergent replicas not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("after resume"), std::string::npos) << e.what();
  }
}

TEST(MpiCommunicator, MissingPeerTimesOutNamingTheOperation) {
  auto comm = MakeComm(std::chrono::milliseconds(400));
  // Above kSmallMessageBytes: queued to the communication thread, which has
  // taken it by the time rank 0 waits, so Wait() can give up (a collective run
  // on the caller's thread cannot be interrupted: the watchdog aborts the job).
  torch::Tensor t = torch::ones({100000});
  if (comm->rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto work = comm->AllReduceAsync(t, ReduceOp::kSum);
  if (comm->rank() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto start = std::chrono::steady_clock::now();
    try {
      work->Wait();
      FAIL() << "no timeout";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("all-reduce of 100000"), std::string::npos) << message;
      EXPECT_NE(message.find("rank 0 of 2"), std::string::npos) << message;
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
    }
  }
  // The late peer joins after 1.5 s and completes the collective; wait for it
  // on a fresh communicator so the job ends cleanly.
  auto relaxed = MakeComm();
  relaxed->Barrier();
}

}  // namespace
}  // namespace instructflip

