// Run under `mpirun -np 2`: each rank loads its slices of an epoch; the ranks
// gather what they saw and check that together they cover every sample exactly
// once, in the global order a single process would use.
#include <mpi.h>

#include <gtest/gtest.h>

#include <set>

#include "dataio/loader.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

TEST(LoaderMpi, RanksCoverTheEpochExactlyOnce) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ASSERT_EQ(world, 2);
  // Rank 0 writes the store; the others wait for it.
  char path[256] = {0};
  std::unique_ptr<testing::TempDir> dir;
  if (rank == 0) {
    dir = std::make_unique<testing::TempDir>();
    testing::MakeStore(*dir / "s", {{"alpha", 6, 7, 2, 3}, {"beta", 4, 5, 1, 1}}, 24);
    std::snprintf(path, sizeof(path), "%s", (*dir / "s").c_str());
  }
  MPI_Bcast(path, sizeof(path), MPI_CHAR, 0, MPI_COMM_WORLD);
  auto store = Store::Open(path);

  LoaderOptions o;
  o.batch_size = 3;
  o.rank = rank;
  o.world_size = world;
  o.drop_last = false;
  o.threads = 2;
  o.sampler.seed = 9;
  o.augment.enabled = true;
  Loader loader(store, o);
  std::vector<int64_t> mine;  // (batch, slot) sample indices, -1 for padding
  while (auto b = loader.Next())
    for (int j = 0; j < 3; ++j) mine.push_back(b->valid[j].item<bool>() ? b->sample_index[j].item<int64_t>() : -1);
  std::vector<int64_t> all(mine.size() * world);
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(),
                static_cast<int>(mine.size()), MPI_INT64_T, MPI_COMM_WORLD);

  // Interleave per global batch: rank 0's 3 slots, then rank 1's.
  std::vector<int64_t> sequence;
  const size_t batches = mine.size() / 3;
  for (size_t k = 0; k < batches; ++k)
    for (int r = 0; r < world; ++r)
      for (int j = 0; j < 3; ++j) {
        const int64_t i = all[r * mine.size() + k * 3 + j];
        if (i >= 0) sequence.push_back(i);
      }
  LoaderOptions single = o;
  single.rank = 0;
  single.world_size = 1;
  Loader reference(store, single);
  EXPECT_EQ(sequence, reference.epoch_order());
  EXPECT_EQ(std::set<int64_t>(sequence.begin(), sequence.end()).size(), 29u);
  MPI_Barrier(MPI_COMM_WORLD);  // keep rank 0's store until everyone is done
}

}  // namespace
}  // namespace instructflip

