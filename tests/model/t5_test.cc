// T5 pieces: relative-position buckets against Hugging Face's formula, the RMS
// norm, cached greedy decoding against full teacher-forced decoding, and the
// language-model loss against a cross-entropy computed here.
#include "model/t5.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/attention.h"

namespace instructflip {
namespace {

// Hugging Face T5Attention._relative_position_bucket(relative_position = memory - query):
//   bidirectional: num_buckets //= 2 (16); +16 if rp > 0; n = |rp|
//   unidirectional: n = -min(rp, 0)  (future positions -> 0)
//   max_exact = num_buckets // 2; n < max_exact -> n
//   else min(max_exact + int(log(n / max_exact) / log(128 / max_exact) * (num_buckets - max_exact)), num_buckets - 1)
const std::vector<int64_t> kRelativePositions = {-200, -100, -50, -20, -12, -10, -8, -1, 0,
                                                 1,    5,    8,   12,  20,  50,  127, 128, 500};

TEST(T5RelativePositionBucket, BidirectionalMatchesHuggingFaceFormula) {
  // 16 buckets per direction, 8 exact, log-spaced to 128 over 8 more:
  //   -200: n=200, 8+int(log(25)/log(16)*8 = 9.29) = 17 -> 15
  //   -100: 8+int(log(12.5)/log(16)*8 = 7.29) = 15
  //    -50: 8+int(log(6.25)/log(16)*8 = 5.29) = 13
  //    -20: 8+int(log(2.5)/log(16)*8 = 2.64) = 10
  //    -12: 8+int(log(1.5)/log(16)*8 = 1.17) = 9
  //    -10: 8+int(log(1.25)/log(16)*8 = 0.64) = 8
  //     -8: 8+int(log(1)*...) = 8;  -1 -> 1;  0 -> 0
  //  positive: 16 + the same: 1 -> 17, 5 -> 21, 8 -> 24, 12 -> 25, 20 -> 26,
  //     50 -> 29, 127: 8+int(log(15.875)/log(16)*8 = 7.98) = 15 -> 31, 128 and 500 -> min(.., 15) -> 31
  const std::vector<int64_t> expected = {15, 15, 13, 10, 9, 8, 8, 1, 0, 17, 21, 24, 25, 26, 29, 31, 31, 31};
  const torch::Tensor got = RelativePositionBucket(torch::tensor(kRelativePositions, torch::kLong), true, 32, 128);
  ASSERT_EQ(got.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(got, torch::tensor(expected, torch::kLong))) << got;
}

TEST(T5RelativePositionBucket, UnidirectionalMatchesHuggingFaceFormula) {
  // 32 buckets, 16 exact, log-spaced to 128 over 16 more; keys after the query -> 0:
  //   -200: 16+int(log(12.5)/log(8)*16 = 19.43) = 35 -> 31
  //   -100: 16+int(log(6.25)/log(8)*16 = 14.10) = 30
  //    -50: 16+int(log(3.125)/log(8)*16 = 8.77) = 24
  //    -20: 16+int(log(1.25)/log(8)*16 = 1.72) = 17
  //    -12, -10, -8, -1, 0 -> 12, 10, 8, 1, 0 (exact)
  const std::vector<int64_t> expected = {31, 30, 24, 17, 12, 10, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const torch::Tensor got = RelativePositionBucket(torch::tensor(kRelativePositions, torch::kLong), false, 32, 128);
  EXPECT_TRUE(torch::equal(got, torch::tensor(expected, torch::kLong))) << got;
}

TEST(T5RelativePositionBucket, WorksOnMatricesAndStaysInRange) {
  const torch::Tensor query = torch::arange(300, torch::kLong).unsqueeze(1);
  const torch::Tensor memory = torch::arange(300, torch::kLong).unsqueeze(0);
  const torch::Tensor rp = memory - query;
  for (const bool bidirectional : {true, false}) {
    const torch::Tensor b = RelativePositionBucket(rp, bidirectional, 32, 128);
    ASSERT_EQ(b.sizes(), rp.sizes());
    EXPECT_GE(b.min().item<int64_t>(), 0);
    EXPECT_LE(b.max().item<int64_t>(), 31);
    // Buckets depend on the offset only (Toeplitz).
    EXPECT_TRUE(torch::equal(b.narrow(0, 1, 299).narrow(1, 1, 299), b.narrow(0, 0, 299).narrow(1, 0, 299)));
  }
}

TEST(T5LayerNorm, IsRmsNormWithWeight) {
  torch::manual_seed(1);
  T5LayerNorm norm(16, 1e-6);
  {
    torch::NoGradGuard no_grad;
    norm->weight.uniform_(0.5, 2.0);
  }
  const torch::Tensor x = torch::randn({2, 3, 16}) * 3.0 + 0.7;  // non-zero mean: RMS, not variance
  const torch::Tensor x64 = x.to(torch::kDouble);
  const torch::Tensor expected =
      x64 * torch::rsqrt(x64.pow(2).mean(-1, true) + 1e-6) * norm->weight.to(torch::kDouble);
  const torch::Tensor got = norm(x);
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_LT((got.to(torch::kDouble) - expected).abs().max().item<double>(), 1e-5);
  // No bias and no mean subtraction: scaling x leaves the output unchanged.
  EXPECT_LT((norm(x * 10.0) - got).abs().max().item<double>(), 1e-5);
}

T5Config TinyT5Config(int vocab) {
  T5Config c;
  c.vocab_size = vocab;
  c.d_model = 32;
  c.d_kv = 8;
  c.heads = 4;
  c.d_ff = 64;
  c.encoder_layers = 2;
  c.decoder_layers = 2;
  return c;
}

// A random T5 with larger-than-default weights (so argmax decisions are not
// near-ties) and a padded encoder input.
struct TinyT5 {
  T5Model model{nullptr};
  torch::Tensor encoder_out, encoder_keep;
};

TinyT5 MakeTinyT5(int vocab, uint64_t seed) {
  torch::manual_seed(seed);
  TinyT5 t;
  t.model = T5Model(TinyT5Config(vocab));
  t.model->eval();
  {
    torch::NoGradGuard no_grad;
    t.model->lm_head->weight.normal_(0.0, 1.0);
    t.model->shared->weight.normal_(0.0, 1.0);
  }
  const int64_t B = 4, L = 6;
  t.encoder_keep = torch::ones({B, L}, torch::kLong);
  t.encoder_keep[1].narrow(0, 4, 2).fill_(0);
  t.encoder_keep[3].narrow(0, 2, 4).fill_(0);
  torch::NoGradGuard no_grad;
  t.encoder_out = t.model->Encode(torch::randn({B, L, 32}), t.encoder_keep);
  return t;
}

// Greedy decoding recomputed without a cache: at every step run the full
// teacher-forced Decode() on the growing prefix and take the argmax of the
// last position. Returns, per row, the tokens up to and including the first
// eos (or max_new tokens).
std::vector<std::vector<int64_t>> ReferenceGreedy(T5Model& model, const torch::Tensor& encoder_out,
                                                  const torch::Tensor& encoder_keep, int max_new, int64_t eos) {
  torch::NoGradGuard no_grad;
  const int64_t B = encoder_out.size(0);
  torch::Tensor prefix = torch::zeros({B, 1}, torch::kLong);
  std::vector<std::vector<int64_t>> rows(B);
  std::vector<bool> done(B, false);
  for (int step = 0; step < max_new; ++step) {
    const torch::Tensor logits = model->Decode(prefix, torch::ones_like(prefix), encoder_out, encoder_keep);
    const torch::Tensor next = logits.select(1, step).argmax(-1);  // (B,)
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      rows[b].push_back(next[b].item<int64_t>());
      done[b] = rows[b].back() == eos;
    }
    prefix = torch::cat({prefix, next.unsqueeze(1)}, 1);
  }
  return rows;
}

// What a seed's decoding covers.
struct GreedyCoverage {
  bool any_eos = false;            // some row produced eos
  bool all_eos = false;            // every row did (generation stopped early)
  bool eos_at_different_steps = false;  // some rows were padded after eos
};

GreedyCoverage ExpectGreedyMatchesReference(TinyT5& t, int max_new, int64_t eos) {
  const torch::Tensor got = t.model->GenerateGreedy(t.encoder_out, t.encoder_keep, max_new, eos);
  const auto expected = ReferenceGreedy(t.model, t.encoder_out, t.encoder_keep, max_new, eos);
  const int64_t B = t.encoder_out.size(0);
  GreedyCoverage coverage;
  EXPECT_EQ(got.dim(), 2);
  EXPECT_EQ(got.size(0), B);
  if (got.dim() != 2 || got.size(0) != B) return coverage;
  size_t longest = 0, shortest = static_cast<size_t>(max_new) + 1;
  coverage.all_eos = true;
  for (const auto& row : expected) {
    longest = std::max(longest, row.size());
    shortest = std::min(shortest, row.size());
    const bool has_eos = !row.empty() && row.back() == eos;
    coverage.any_eos |= has_eos;
    coverage.all_eos &= has_eos;
  }
  coverage.eos_at_different_steps = coverage.any_eos && shortest < longest;
  // Stops as soon as every row has produced eos, else after max_new tokens.
  EXPECT_EQ(got.size(1), static_cast<int64_t>(coverage.all_eos ? longest : static_cast<size_t>(max_new)));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < got.size(1); ++s) {
      const int64_t want = s < static_cast<int64_t>(expected[b].size()) ? expected[b][s] : 0;  // pad after eos
      EXPECT_EQ(got[b][s].item<int64_t>(), want) << "row " << b << " step " << s;
    }
  }
  return coverage;
}

TEST(T5Generate, CachedGreedyEqualsFullDecodeArgmax) {
  // Vocabulary 40: eos (1) is rarely chosen, so decoding runs all 12 steps.
  TinyT5 t = MakeTinyT5(40, 3);
  const GreedyCoverage coverage = ExpectGreedyMatchesReference(t, 12, /*eos=*/1);
  EXPECT_FALSE(coverage.all_eos);
}

TEST(T5Generate, CachedGreedyPadsAfterEosAndStopsWhenAllRowsFinish) {
  // Vocabulary 5: eos comes after a few steps. Seeds are tried until one has
  // rows finishing at different steps (the early ones continue with pad 0) and
  // all rows finishing before 16 steps (generation stops early); every seed
  // tried must match the reference. (Seed 23 does on LibTorch 1.13 CPU; the
  // search keeps the test independent of the generator's stream.)
  bool covered = false;
  for (uint64_t seed = 20; seed < 80 && !covered; ++seed) {
    TinyT5 t = MakeTinyT5(5, seed);
    const GreedyCoverage coverage = ExpectGreedyMatchesReference(t, 16, /*eos=*/1);
    covered = coverage.all_eos && coverage.eos_at_different_steps;
  }
  EXPECT_TRUE(covered) << "no seed covered early stopping with rows padded after eos";
}

TEST(T5Generate, CachedGreedyMatchesOnSeveralSeeds) {
  for (uint64_t seed = 10; seed < 16; ++seed) {
    TinyT5 t = MakeTinyT5(7, seed);
    ExpectGreedyMatchesReference(t, 10, /*eos=*/1);
  }
}

// Labels (3, 5) with right padding of -100 (the batcher's layout).
torch::Tensor PaddedLabels() {
  return torch::tensor({{5, 7, 9, 3, 1}, {4, 6, 1, -100, -100}, {8, 1, -100, -100, -100}}, torch::kLong);
}

TEST(T5LanguageModelLoss, EqualsManualCrossEntropyOfShiftedDecode) {
  TinyT5 t = MakeTinyT5(20, 7);
  const torch::Tensor labels = PaddedLabels();
  const torch::Tensor loss = t.model->LanguageModelLoss(t.encoder_out.narrow(0, 0, 3), t.encoder_keep.narrow(0, 0, 3), labels);
  ASSERT_EQ(loss.dim(), 0);

  // Decoder inputs: start token 0, then the labels shifted right, -100 -> 0.
  const torch::Tensor inputs = torch::tensor({{0, 5, 7, 9, 3}, {0, 4, 6, 1, 0}, {0, 8, 1, 0, 0}}, torch::kLong);
  const torch::Tensor keep = labels.ne(-100).to(torch::kLong);
  const torch::Tensor logits =
      t.model->Decode(inputs, keep, t.encoder_out.narrow(0, 0, 3), t.encoder_keep.narrow(0, 0, 3)).to(torch::kDouble);
  const torch::Tensor log_probs = torch::log_softmax(logits, -1);
  double sum = 0.0;
  int count = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t s = 0; s < 5; ++s) {
      const int64_t y = labels[b][s].item<int64_t>();
      if (y == -100) continue;
      sum -= log_probs[b][s][y].item<double>();
      ++count;
    }
  ASSERT_EQ(count, 10);  // token-level mean over the batch, </s> included
  EXPECT_NEAR(loss.item<double>(), sum / count, 1e-5);
}

// -100 positions are ignored entirely: the batch loss equals the token-weighted
// mean of each row's loss computed alone without padding.
TEST(T5LanguageModelLoss, PaddingIsIgnored) {
  TinyT5 t = MakeTinyT5(20, 8);
  const torch::Tensor labels = PaddedLabels();
  const double batch = t.model->LanguageModelLoss(t.encoder_out.narrow(0, 0, 3), t.encoder_keep.narrow(0, 0, 3), labels)
                           .item<double>();
  const std::vector<int64_t> lengths = {5, 3, 2};
  double weighted = 0.0;
  for (int64_t b = 0; b < 3; ++b) {
    const torch::Tensor row = labels.narrow(0, b, 1).narrow(1, 0, lengths[b]);
    weighted += lengths[b] * t.model->LanguageModelLoss(t.encoder_out.narrow(0, b, 1), t.encoder_keep.narrow(0, b, 1), row)
                                 .item<double>();
  }
  EXPECT_NEAR(batch, weighted / 10.0, 1e-5);
  // Changing what sits under -100 changes nothing.
  torch::Tensor longer = torch::full({3, 8}, -100, torch::kLong);
  longer.narrow(1, 0, 5).copy_(labels);
  EXPECT_NEAR(t.model->LanguageModelLoss(t.encoder_out.narrow(0, 0, 3), t.encoder_keep.narrow(0, 0, 3), longer).item<double>(),
              batch, 1e-5);
}

TEST(T5LanguageModelLoss, AllIgnoredGivesZeroWithGraph) {
  TinyT5 t = MakeTinyT5(20, 9);
  const torch::Tensor encoder_out = t.encoder_out.detach().clone().requires_grad_(true);
  const torch::Tensor labels = torch::full({4, 3}, -100, torch::kLong);
  const torch::Tensor loss = t.model->LanguageModelLoss(encoder_out, t.encoder_keep, labels);
  EXPECT_EQ(loss.item<double>(), 0.0);
  EXPECT_FALSE(std::isnan(loss.item<double>()));
  ASSERT_TRUE(loss.requires_grad());
  loss.backward();
  ASSERT_TRUE(encoder_out.grad().defined());
  EXPECT_EQ(encoder_out.grad().abs().max().item<double>(), 0.0);
  // A real label gives a non-zero gradient through the (trainable here) decoder.
  const torch::Tensor encoder_out2 = t.encoder_out.detach().clone().requires_grad_(true);
  torch::Tensor some = labels.clone();
  some[2][0] = 4;
  some[2][1] = 1;
  t.model->LanguageModelLoss(encoder_out2, t.encoder_keep, some).backward();
  EXPECT_GT(encoder_out2.grad()[2].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(encoder_out2.grad()[0].abs().sum().item<double>(), 0.0);  // rows without labels get nothing
}

}  // namespace
}  // namespace instructflip
