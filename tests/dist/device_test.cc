// Device selection per rank, and the NCCL entry points of a build without CUDA.
#include "dist/device.h"

#include <gtest/gtest.h>

#include "dist/nccl_communicator.h"
#include "tests/common/test_util.h"

namespace instructflip {
namespace {

using testing::ErrorOf;

WorldInfo Node(int local_rank, int local_size) {
  WorldInfo world;
  world.rank = world.local_rank = local_rank;
  world.size = world.local_size = local_size;
  return world;
}

TEST(SelectDevice, CpuIsAlwaysCpuAndAutoFollowsTheGpus) {
  EXPECT_EQ(SelectDevice(DeviceRequest::kCpu, Node(1, 2), "here"), torch::Device(torch::kCPU));
  const torch::Device chosen = SelectDevice(DeviceRequest::kAuto, Node(0, 1), "here");
  if (torch::cuda::is_available()) {
    EXPECT_EQ(chosen, torch::Device(torch::kCUDA, 0));
  } else {
    EXPECT_EQ(chosen, torch::Device(torch::kCPU));
  }
}

TEST(SelectDevice, NamesAreFoundAndAnUnknownOneIsNot) {
  EXPECT_EQ(kDeviceRequests.Find("auto"), DeviceRequest::kAuto);
  EXPECT_EQ(kDeviceRequests.Find("cpu"), DeviceRequest::kCpu);
  EXPECT_EQ(kDeviceRequests.Find("cuda"), DeviceRequest::kCuda);
  EXPECT_FALSE(kDeviceRequests.Find("gpu").has_value());
}

TEST(SelectDevice, CudaTakesTheLocalRanksGpuAndRefusesMoreRanksThanGpus) {
  const int64_t gpus = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (gpus == 0) {
    const std::string error = ErrorOf([] { SelectDevice(DeviceRequest::kCuda, Node(0, 1), "here"); });
    EXPECT_NE(error.find("LibTorch sees no CUDA device"), std::string::npos) << error;
    return;
  }
  EXPECT_EQ(SelectDevice(DeviceRequest::kCuda, Node(static_cast<int>(gpus - 1), static_cast<int>(gpus)), "here"),
            torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpus - 1)));
  const std::string error = ErrorOf([&] { SelectDevice(DeviceRequest::kCuda, Node(0, static_cast<int>(gpus + 1)), "here"); });
  EXPECT_NE(error.find(std::to_string(gpus + 1) + " ranks on this node but " + std::to_string(gpus) + " CUDA devices"),
            std::string::npos)
      << error;
}

TEST(NcclCommunicator, ABuildWithoutCudaSaysSo) {
  if (NcclAvailable()) GTEST_SKIP() << "this build has NCCL (tests/gpu covers it)";
  const std::string error =
      ErrorOf([] { MakeNcclCommunicator(MPI_COMM_WORLD, torch::Device(torch::kCUDA, 0), std::chrono::seconds(1)); });
  EXPECT_NE(error.find("this build has none (LibTorch without CUDA)"), std::string::npos) << error;
}

}  // namespace
}  // namespace instructflip
