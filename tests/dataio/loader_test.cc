#include "dataio/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "dataio/base/check.h"
#include "dataio/ssl_views.h"
#include "tests/dataio/test_util.h"

namespace instructflip {
namespace {

using testing::DomainSpec;
using testing::MakeStore;
using testing::TempDir;

class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // 23 + 14 = 37 samples: a prime-ish count so no batch size divides it.
    MakeStore(*dir_ / "s", {{"alpha", 5, 6, 4, 8}, {"beta", 3, 4, 3, 4}}, 24);
    store_ = Store::Open(*dir_ / "s");
  }
  static void TearDownTestSuite() {
    store_.reset();
    delete dir_;
  }
  static LoaderOptions Options(int batch, int rank, int world, bool drop_last) {
    LoaderOptions o;
    o.batch_size = batch;
    o.rank = rank;
    o.world_size = world;
    o.drop_last = drop_last;
    o.threads = 2;
    o.sampler.seed = 42;
    return o;
  }
  // Valid sample indices per global position, gathered from all ranks.
  static std::vector<int64_t> GlobalSequence(int batch, int world, bool drop_last, LoaderState start = {}) {
    std::vector<std::vector<Batch>> per_rank(world);
    for (int r = 0; r < world; ++r) {
      Loader loader(store_, Options(batch, r, world, drop_last), start);
      while (auto b = loader.Next()) per_rank[r].push_back(std::move(*b));
    }
    std::vector<int64_t> sequence;
    for (size_t k = 0; k < per_rank[0].size(); ++k)
      for (int r = 0; r < world; ++r) {
        EXPECT_EQ(per_rank[r].size(), per_rank[0].size());
        const Batch& b = per_rank[r][k];
        for (int j = 0; j < batch; ++j)
          if (b.valid[j].item<bool>()) sequence.push_back(b.sample_index[j].item<int64_t>());
      }
    return sequence;
  }
  static TempDir* dir_;
  static std::shared_ptr<const Store> store_;
};
TempDir* LoaderTest::dir_ = nullptr;
std::shared_ptr<const Store> LoaderTest::store_;

TEST_F(LoaderTest, EverySampleExactlyOnceAcrossOneTwoThreeRanks) {
  Loader reference(store_, Options(1, 0, 1, false));
  const std::vector<int64_t> order = reference.epoch_order();
  ASSERT_EQ(order.size(), 37u);
  for (int world : {1, 2, 3}) {
    const std::vector<int64_t> sequence = GlobalSequence(4, world, /*drop_last=*/false);
    EXPECT_EQ(sequence, order) << "world " << world;  // same global order, each once
    std::set<int64_t> unique(sequence.begin(), sequence.end());
    EXPECT_EQ(unique.size(), 37u);
  }
}

// data.spoof_types: only samples of the chosen types are eligible, and the
// validation hold-out is drawn from them too (training and validation stay disjoint).
TEST_F(LoaderTest, SpoofTypeFilterKeepsOnlyThoseTypes) {
  LoaderOptions o = Options(4, 0, 1, false);
  o.spoof_types = {0, 3, 8};
  const SampleTable& t = store_->table();
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < t.size(); ++i)
    if (t.spoof_type[i] == 0 || t.spoof_type[i] == 3 || t.spoof_type[i] == 8) expected.push_back(i);
  ASSERT_LT(expected.size(), static_cast<size_t>(t.size()));
  EXPECT_EQ(Loader(store_, o).eligible(), expected);
  o.holdout = {Holdout::Part::kTraining, 0.3, 5};
  const std::vector<int64_t> training = Loader(store_, o).eligible();
  o.holdout.part = Holdout::Part::kValidation;
  const std::vector<int64_t> validation = Loader(store_, o).eligible();
  std::vector<int64_t> both = training;
  both.insert(both.end(), validation.begin(), validation.end());
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, expected);
  EXPECT_FALSE(validation.empty());
  o.spoof_types = {-1};  // spoofs of unknown type: none in this store
  o.holdout = {};
  EXPECT_NE(testing::ErrorOf([&] { Loader(store_, o); }).find("domains [all]"), std::string::npos);
  o.domains = {"alpha", "beta"};
  const std::string e = testing::ErrorOf([&] { Loader(store_, o); });
  EXPECT_NE(e.find("has no samples for domains [alpha,beta] split 'any' of the selected spoof types"), std::string::npos)
      << e;
}

// `first`: the first N eligible samples in store order (the reference's first
// 9,600 CelebA-Spoof test rows).
TEST_F(LoaderTest, FirstKeepsTheFirstEligibleSamplesInStoreOrder) {
  LoaderOptions o = Options(4, 0, 1, false);
  o.domains = {"beta"};
  o.split = Split::kTest;
  const std::vector<int64_t> all = Loader(store_, o).eligible();
  ASSERT_EQ(all.size(), 7u);
  o.first = 5;
  EXPECT_EQ(Loader(store_, o).eligible(), std::vector<int64_t>(all.begin(), all.begin() + 5));
  o.first = 100;
  EXPECT_EQ(Loader(store_, o).eligible(), all);
}

// ssl_views: two SimCLR views per sample, keyed like the main transform, so
// they do not depend on the thread count; they differ from each other.
TEST_F(LoaderTest, SslViewsAreTwoKeyedViewsPerSample) {
  LoaderOptions o = Options(4, 0, 1, true);
  o.ssl_views = true;
  o.augment.enabled = true;
  Loader one(store_, o);
  o.threads = 1;
  Loader other(store_, o);
  const Batch a = *one.Next(), b = *other.Next();
  ASSERT_EQ(a.ssl_views.sizes(), (std::vector<int64_t>{2, 4, 3, 24, 24}));
  EXPECT_TRUE(torch::equal(a.ssl_views, b.ssl_views));
  EXPECT_GT((a.ssl_views[0] - a.ssl_views[1]).abs().max().item<double>(), 0.1);
  EXPECT_FALSE(Loader(store_, Options(4, 0, 1, true)).Next()->ssl_views.defined());
  // The view parameters follow torchvision's ranges.
  for (uint64_t key = 0; key < 200; ++key) {
    const SslViewParams p = SampleSslViewParams(24, 24, key);
    const double area = double(p.crop_width) * p.crop_height / (24 * 24);
    EXPECT_TRUE(p.crop_x >= 0 && p.crop_y >= 0 && p.crop_x + p.crop_width <= 24 && p.crop_y + p.crop_height <= 24);
    EXPECT_GE(area, 0.05);  // 0.08 of the area, up to rounding of a 24-pixel side
    EXPECT_LE(std::abs(p.hue), 0.1f);
    EXPECT_TRUE(p.sigma >= 0.1f && p.sigma <= 2.0f);
  }
}

TEST_F(LoaderTest, DropLastDropsOnlyTheShortTail) {
  Loader reference(store_, Options(1, 0, 1, false));
  const std::vector<int64_t>& order = reference.epoch_order();
  for (int world : {1, 2, 3}) {
    const std::vector<int64_t> sequence = GlobalSequence(5, world, /*drop_last=*/true);
    const size_t expected = 37 / (5 * world) * (5 * world);
    EXPECT_EQ(sequence, std::vector<int64_t>(order.begin(), order.begin() + expected)) << world;
  }
}

TEST_F(LoaderTest, DropMultipleCutsTheEpochWhereverTheWorldSize) {
  // 37 samples, optimizer steps of 12: the epoch ends after 36 for 1 or 3 ranks of 4.
  for (int world : {1, 3}) {
    LoaderOptions o = Options(4, 0, world, true);
    o.drop_multiple = 12;
    Loader loader(store_, o);
    EXPECT_EQ(loader.batches_in_epoch(), 36 / (4 * world)) << world;
  }
  LoaderOptions bad = Options(4, 0, 2, true);
  bad.drop_multiple = 12;  // not a multiple of 4 x 2
  EXPECT_THROW(Loader(store_, bad), Error);
}

TEST_F(LoaderTest, PaddingIsMarkedInvalid) {
  Loader loader(store_, Options(8, 1, 2, false));  // G = 16: 37 = 2*16 + 5
  std::vector<Batch> batches;
  while (auto b = loader.Next()) batches.push_back(std::move(*b));
  ASSERT_EQ(batches.size(), 3u);
  // Last global batch covers positions 32..47; rank 1 holds 40..47, all padding.
  EXPECT_EQ(batches[2].valid.sum().item<int64_t>(), 0);
  EXPECT_EQ(batches[2].sample_index.max().item<int64_t>(), -1);
  EXPECT_EQ(batches[2].images.abs().sum().item<float>(), 0.f);
  EXPECT_EQ(batches[2].state_after, (LoaderState{1, 0}));
}

TEST_F(LoaderTest, ResumeAtAnyPositionGivesIdenticalBatches) {
  LoaderOptions o = Options(3, 0, 1, true);
  o.augment.enabled = true;
  std::vector<Batch> straight;
  {
    Loader loader(store_, o);
    while (auto b = loader.Next()) straight.push_back(std::move(*b));
  }
  ASSERT_EQ(straight.size(), 12u);
  for (size_t cut : {1u, 4u, 7u}) {
    Loader resumed(store_, o, straight[cut - 1].state_after);
    for (size_t k = cut; k < straight.size(); ++k) {
      auto b = resumed.Next();
      ASSERT_TRUE(b.has_value());
      EXPECT_TRUE(torch::equal(b->images, straight[k].images)) << "cut " << cut << " batch " << k;
      EXPECT_TRUE(torch::equal(b->sample_index, straight[k].sample_index));
      EXPECT_EQ(b->state_after, straight[k].state_after);
    }
    EXPECT_FALSE(resumed.Next().has_value());
  }
  EXPECT_EQ(straight.back().state_after, (LoaderState{1, 0}));
}

TEST_F(LoaderTest, WorldSizeChangeContinuesTheGlobalOrder) {
  Loader reference(store_, Options(1, 0, 1, false));
  const std::vector<int64_t>& order = reference.epoch_order();
  // Two ranks take 3 steps of 2 per rank (12 positions), then three ranks go on.
  std::vector<int64_t> sequence;
  LoaderState state;
  {
    std::vector<std::unique_ptr<Loader>> loaders;
    for (int r = 0; r < 2; ++r) loaders.push_back(std::make_unique<Loader>(store_, Options(2, r, 2, false)));
    for (int step = 0; step < 3; ++step)
      for (int r = 0; r < 2; ++r) {
        auto b = loaders[r]->Next();
        for (int j = 0; j < 2; ++j) sequence.push_back(b->sample_index[j].item<int64_t>());
        state = b->state_after;
      }
  }
  EXPECT_EQ(state, (LoaderState{0, 12}));
  const std::vector<int64_t> rest = GlobalSequence(2, 3, false, state);
  sequence.insert(sequence.end(), rest.begin(), rest.end());
  EXPECT_EQ(sequence, order);
}

TEST_F(LoaderTest, ImagesAreTheSamplesNamedByTheirIndex) {
  Loader loader(store_, Options(5, 0, 1, false));
  const NormalizeOptions n;
  while (auto b = loader.Next()) {
    for (int j = 0; j < 5; ++j) {
      if (!b->valid[j].item<bool>()) continue;
      const int64_t tag = b->sample_index[j].item<int64_t>();  // MakeStore tags = store index
      const float red = b->images[j][0].mean().item<float>() * n.std[0] + n.mean[0];
      EXPECT_NEAR(red * 255, tag % 251, 2.5) << tag;
      EXPECT_EQ(b->label[j].item<int64_t>(), store_->table().label[tag]);
      EXPECT_EQ(b->video_id[j].item<int64_t>(), store_->table().video_id[tag]);
      EXPECT_EQ(b->camera_quality[j].item<int64_t>(), store_->table().camera_quality[tag]);
    }
  }
}

TEST_F(LoaderTest, OutputDoesNotDependOnThreadCount) {
  LoaderOptions o = Options(4, 0, 1, true);
  o.augment.enabled = true;
  o.threads = 1;
  Loader one(store_, o);
  o.threads = 3;
  o.prefetch = 5;
  Loader three(store_, o);
  int batches = 0;
  while (auto a = one.Next()) {
    auto b = three.Next();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(torch::equal(a->images, b->images));
    ++batches;
  }
  EXPECT_EQ(batches, 9);
}

TEST_F(LoaderTest, AugmentationFollowsSeedEpochAndPosition) {
  LoaderOptions o = Options(37, 0, 1, true);
  o.augment.enabled = true;
  o.sampler.shuffle = false;  // same sample at the same position in both epochs
  auto epoch0 = Loader(store_, o, {0, 0}).Next();
  auto epoch0_again = Loader(store_, o, {0, 0}).Next();
  auto epoch1 = Loader(store_, o, {1, 0}).Next();
  EXPECT_TRUE(torch::equal(epoch0->images, epoch0_again->images));
  EXPECT_FALSE(torch::equal(epoch0->images, epoch1->images));
  EXPECT_TRUE(torch::equal(epoch0->sample_index, epoch1->sample_index));
}

TEST_F(LoaderTest, DomainAndSplitFilters) {
  LoaderOptions o = Options(4, 0, 1, false);
  o.domains = {"beta"};
  o.split = Split::kTest;
  Loader loader(store_, o);
  EXPECT_EQ(loader.eligible().size(), 7u);
  while (auto b = loader.Next())
    for (int j = 0; j < 4; ++j)
      if (b->valid[j].item<bool>()) {
        const int64_t i = b->sample_index[j].item<int64_t>();
        EXPECT_EQ(store_->table().domain[i], 1);
        EXPECT_EQ(store_->table().split[i], 1);
      }
  o.domains = {"gamma"};
  try {
    Loader bad(store_, o);
    FAIL() << "unknown domain accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown domain 'gamma'"), std::string::npos) << e.what();
  }
  o = Options(4, 0, 1, false);
  EXPECT_THROW(Loader(store_, o, LoaderState{0, 38}), Error);
  EXPECT_THROW(Loader(store_, Options(4, 2, 2, false)), Error);
}

TEST(Loader, CorruptJpegInTheStoreIsAnErrorNamingTheSample) {
  TempDir tmp;
  StoreWriterOptions options;
  options.dir = tmp / "s";
  options.image_size = 24;
  {
    StoreWriter writer(options);
    const int d = writer.AddDomain("alpha");
    for (int i = 0; i < 4; ++i) {
      SampleAttributes a;
      a.source = "img" + std::to_string(i) + ".jpg";
      std::string jpeg = EncodeJpeg(testing::TaggedImage(i, 24), 90);
      if (i == 2) jpeg.resize(jpeg.size() - 40);  // truncated: header fine, data cut
      writer.Add(d, jpeg, a);
    }
    writer.Commit();
  }
  LoaderOptions o;
  o.batch_size = 4;
  o.threads = 1;
  o.sampler.shuffle = false;
  Loader loader(Store::Open(tmp / "s"), o);
  try {
    loader.Next();
    FAIL() << "truncated JPEG decoded silently";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("shard-00000.h5 sample 2"), std::string::npos) << message;
    EXPECT_NE(message.find("img2.jpg"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace instructflip
