// Built only against a CUDA LibTorch; every test is skipped on a machine
// without a GPU. The NCCL communicator (on every rank count: under
// `mpirun -np N` with N GPUs the sums are real), the gradient reducer on CUDA
// parameters, and the trainer on cuda:0 against the same run on the CPU.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "dist/nccl_communicator.h"
#include "dist/reducer.h"
#include "tests/dataio/test_util.h"
#include "tests/trainer/tiny_training.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;

const torch::Device kGpu(torch::kCUDA, 0);

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    // Comparisons with the CPU in fp32: no TF32, deterministic kernels where
    // they exist (warn, not fail, where they do not: index_select's backward).
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setDeterministicCuDNN(true);
    at::globalContext().setBenchmarkCuDNN(false);
  }
  static std::unique_ptr<Communicator> Nccl() {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return MakeNcclCommunicator(MPI_COMM_WORLD, torch::Device(torch::kCUDA, rank), std::chrono::seconds(60));
  }
};

TEST_F(CudaTest, NcclCollectivesGiveTheSumsOfAllRanks) {
  std::unique_ptr<Communicator> comm = Nccl();
  EXPECT_EQ(comm->name(), "nccl");
  const int n = comm->size(), rank = comm->rank();
  const torch::Device device(torch::kCUDA, rank);
  const torch::Tensor base = torch::arange(1000, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  torch::Tensor x = base * (rank + 1);
  comm->AllReduce(x, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(x, base * (n * (n + 1) / 2)));
  torch::Tensor y = base * (rank + 1);
  comm->AllReduceAsync(y, ReduceOp::kAverage)->Wait();
  EXPECT_TRUE(torch::allclose(y, base * ((n + 1) / 2.0)));
  torch::Tensor half = torch::full({64}, rank + 1.0, torch::TensorOptions().dtype(torch::kBFloat16).device(device));
  comm->AllReduce(half, ReduceOp::kSum);
  EXPECT_EQ(half.sum().item<float>(), 64.0f * n * (n + 1) / 2);

  torch::Tensor b = torch::full({7}, rank + 7.0, torch::TensorOptions().device(device));
  comm->Broadcast(b, 0);
  EXPECT_TRUE(torch::equal(b.cpu(), torch::full({7}, 7.0)));
  const torch::Tensor gathered = comm->AllGather(torch::full({rank + 1, 2}, double(rank), torch::TensorOptions().dtype(torch::kFloat64).device(device)));
  EXPECT_EQ(gathered.device(), device);
  EXPECT_EQ(gathered.size(0), n * (n + 1) / 2);
  // CPU tensors take the MPI path of the same communicator.
  torch::Tensor host = torch::ones({3});
  comm->AllReduce(host, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(host, torch::full({3}, float(n))));
  torch::Tensor strided = torch::zeros({4, 4}, torch::TensorOptions().device(device)).t();
  const std::string error = ErrorOf([&] { comm->AllReduce(strided, ReduceOp::kSum); });
  EXPECT_NE(error.find("needs a contiguous tensor"), std::string::npos) << error;
}

TEST_F(CudaTest, ReducerAveragesCudaGradientsDuringBackward) {
  std::unique_ptr<Communicator> comm = Nccl();
  const torch::Device device(torch::kCUDA, comm->rank());
  torch::manual_seed(3);
  torch::nn::Sequential net(torch::nn::Linear(64, 256), torch::nn::ReLU(), torch::nn::Linear(256, 256),
                            torch::nn::ReLU(), torch::nn::Linear(256, 8));
  net->to(device);
  std::vector<torch::Tensor> parameters = net->parameters();
  const torch::Tensor input = torch::randn({32, 64}).to(device);  // the same batch on every rank
  net->forward(input).pow(2).sum().backward();
  std::vector<torch::Tensor> expected;
  for (auto& p : parameters) {
    expected.push_back(p.grad().clone());
    p.mutable_grad() = torch::Tensor();
  }
  ReducerOptions options;
  options.first_bucket_bytes = 4 << 10;
  options.bucket_bytes = 64 << 10;
  GradientReducer reducer(parameters, comm.get(), options);
  const torch::Tensor loss = net->forward(input).pow(2).sum();
  reducer.Prepare(/*sync=*/true, loss);
  loss.backward();
  reducer.Finalize();
  EXPECT_GT(reducer.num_buckets(), 2);
  EXPECT_GT(reducer.last_stats().launched_in_backward, 0);
  for (size_t i = 0; i < parameters.size(); ++i) {
    ASSERT_EQ(parameters[i].grad().device(), device);
    EXPECT_TRUE(torch::allclose(parameters[i].grad(), expected[i], 1e-6, 1e-6)) << "parameter " << i;
  }
}

class CudaTrainerTest : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) GTEST_SKIP() << "the trainer comparisons run on one rank";
    store_ = testutil::SynthesizeTinyStore(dir_.path, 24, 4);
  }
  static double MaxDifference(Trainer& a, Trainer& b) {
    double worst = 0;
    const auto pa = a.model()->parameters(), pb = b.model()->parameters();
    for (size_t i = 0; i < pa.size(); ++i)
      worst = std::max(worst, (pa[i].cpu() - pb[i].cpu()).abs().max().item<double>());
    return worst;
  }
  TempDir dir_;
  std::string store_;
};

TEST_F(CudaTrainerTest, GpuRunMatchesTheCpuRunAndResumesOnTheGpu) {
  auto single = MakeSingleProcessCommunicator();
  std::unique_ptr<Communicator> nccl = Nccl();
  TrainerOptions o = testutil::TinyTrainerOptions(store_, 4, 2);
  Trainer cpu(o, single.get(), dir_ / "cpu");
  cpu.Run("");
  o.device = kGpu;
  Trainer gpu(o, nccl.get(), dir_ / "gpu");
  EXPECT_EQ(gpu.parameters().front().device(), kGpu);
  gpu.Run("");
  const double difference = MaxDifference(cpu, gpu);
  std::cout << "[ cpu vs cuda ] max |dparam| after 6 steps: " << difference << "\n";
  EXPECT_LT(difference, 1e-4);
  // The checkpoint keeps the GPU's generator too; a run cut at step 3 and
  // resumed on the GPU ends where the uninterrupted one did.
  EXPECT_TRUE(std::filesystem::exists(dir_ / "gpu/step-00000006/rank-00000.cuda.rng"));
  {
    Trainer cut(o, nccl.get(), dir_ / "cut");
    cut.Run("", /*stop_after=*/3);
  }
  Trainer resumed(o, nccl.get(), dir_ / "cut");
  resumed.Run("auto");
  const double resume_difference = MaxDifference(gpu, resumed);
  std::cout << "[ cuda resume ] max |dparam|: " << resume_difference << "\n";
  EXPECT_LT(resume_difference, 1e-5);
}

TEST_F(CudaTrainerTest, MixedPrecisionTrainsOnTheGpu) {
  std::unique_ptr<Communicator> nccl = Nccl();
  for (torch::ScalarType precision : {torch::kBFloat16, torch::kFloat16}) {
    TrainerOptions o = testutil::TinyTrainerOptions(store_, 4, 2);
    o.device = kGpu;
    o.precision = precision;
    o.total_steps = 24;  // as trainer_test's MixedPrecisionPathsTrain
    o.schedule.max_lr = 3e-3;
    o.log_every = 1;
    const std::string run = dir_ / precision;
    Trainer trainer(o, nccl.get(), run);
    const TrainResult result = trainer.Run("");
    ASSERT_TRUE(std::isfinite(result.last_loss)) << precision;
    // It learns: the classification loss of the last 4 steps is below that of the first 4.
    const auto [first, last] = testutil::FirstAndLastLoggedMeans(run, "loss_classification", 4);
    std::cout << "[ cuda " << precision << " ] classification loss " << first << " -> " << last << "\n";
    EXPECT_LT(last, first) << precision;
  }
}

}  // namespace
}  // namespace instructflip
