// The T5 warm-up cache: the second warm-up of the same content loads the first
// one's result bit for bit; other content (initial weights) is not confused with it.
#include "model/t5_warmup.h"

#include <gtest/gtest.h>

#include "tests/common/test_util.h"
#include "tests/model/tiny_model.h"

namespace instructflip {
namespace {

using testing::TempDir;

T5Model TinyT5(const ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  T5Model t5(config.t5);
  for (auto& p : t5->parameters()) p.set_requires_grad(false);
  return t5;
}

TEST(T5Warmup, CachedResultEqualsTheComputedOneAndKeysOnContent) {
  ModelConfig config = testutil::TinyConfig();
  config.t5_warmup.steps = 5;
  config.t5_warmup.lr = 3e-3;
  const T5Tokenizer& tokenizer = *testutil::GetTinyTokenizers().t5;
  TempDir dir;
  const std::string cache = dir / "cache";

  T5Model first = TinyT5(config, 3);
  bool from_cache = true;
  const T5WarmupResult computed = WarmUpT5Cached(first, config, tokenizer, cache, &from_cache);
  EXPECT_FALSE(from_cache);
  EXPECT_EQ(computed.steps, 5);
  // Uncached, from the same start: the same weights (the warm-up is deterministic).
  T5Model plain = TinyT5(config, 3);
  WarmUpT5(plain, config, tokenizer);

  T5Model second = TinyT5(config, 3);
  const T5WarmupResult loaded = WarmUpT5Cached(second, config, tokenizer, cache, &from_cache);
  EXPECT_TRUE(from_cache);
  EXPECT_EQ(loaded.steps, computed.steps);
  EXPECT_DOUBLE_EQ(loaded.loss, computed.loss);
  const auto a = first->named_parameters(), b = second->named_parameters(), c = plain->named_parameters();
  for (const auto& p : a) {
    EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), c[p.key()])) << p.key();
    EXPECT_FALSE(b[p.key()].requires_grad()) << p.key();
  }
  EXPECT_FALSE(second->is_training());

  // Another initial T5, or other warm-up settings: computed, not loaded.
  T5Model other = TinyT5(config, 4);
  WarmUpT5Cached(other, config, tokenizer, cache, &from_cache);
  EXPECT_FALSE(from_cache);
  config.t5_warmup.steps = 6;
  T5Model longer = TinyT5(config, 3);
  WarmUpT5Cached(longer, config, tokenizer, cache, &from_cache);
  EXPECT_FALSE(from_cache);
  // No cache directory: never cached, nothing written.
  T5Model uncached = TinyT5(config, 3);
  WarmUpT5Cached(uncached, config, tokenizer, "", &from_cache);
  EXPECT_FALSE(from_cache);
}

}  // namespace
}  // namespace instructflip
