// Attention(), PaddingMask(), SplitHeads()/MergeHeads() against references
// computed here in double precision.
#include "model/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace instructflip {
namespace {

// softmax(q k^T * scale + mask) v in double, with an explicit max-subtracted softmax.
torch::Tensor ReferenceAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& mask, double scale) {
  torch::Tensor scores = torch::matmul(q.to(torch::kDouble), k.to(torch::kDouble).transpose(-2, -1)) * scale;
  if (mask.defined()) scores = scores + mask.to(torch::kDouble);
  const torch::Tensor shifted = scores - std::get<0>(scores.max(-1, /*keepdim=*/true));
  const torch::Tensor e = shifted.exp();
  const torch::Tensor p = e / e.sum(-1, /*keepdim=*/true);
  return torch::matmul(p, v.to(torch::kDouble));
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

struct Qkv {
  torch::Tensor q, k, v;
};

Qkv RandomQkv(int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D) {
  return {torch::randn({B, H, Lq, D}), torch::randn({B, H, Lk, D}), torch::randn({B, H, Lk, D})};
}

// Every combination of fused/plain path, scale and mask kind agrees with the reference.
TEST(Attention, MatchesDoublePrecisionReference) {
  torch::manual_seed(1);
  const int64_t B = 2, H = 3, Lq = 5, Lk = 7, D = 8;
  const Qkv x = RandomQkv(B, H, Lq, Lk, D);
  // Masks: none; a padding mask (B,1,1,Lk) hiding the last 3 keys of row 1;
  // a dense random additive mask (B,H,Lq,Lk).
  const torch::Tensor keep = torch::tensor({{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0, 0}}, torch::kLong);
  const std::vector<std::pair<const char*, torch::Tensor>> masks = {
      {"none", torch::Tensor()},
      {"padding", PaddingMask(keep, torch::kFloat32)},
      {"dense", torch::randn({B, H, Lq, Lk}) * 2.0},
  };
  for (const auto& [name, mask] : masks) {
    for (const double scale : {1.0, 1.0 / std::sqrt(static_cast<double>(D))}) {
      const torch::Tensor expected = ReferenceAttention(x.q, x.k, x.v, mask, scale);
      for (const bool fused : {true, false}) {
        const torch::Tensor got = Attention(x.q, x.k, x.v, mask, scale, 0.0, fused);
        ASSERT_EQ(got.sizes(), (std::vector<int64_t>{B, H, Lq, D}));
        EXPECT_EQ(got.scalar_type(), torch::kFloat32);
        EXPECT_LT(MaxAbsDiff(got, expected), 1e-5) << "mask " << name << " scale " << scale << " fused " << fused;
      }
    }
  }
}

// A causal (1,1,L,L) mask: row i of the output is attention over keys 0..i only.
TEST(Attention, CausalMaskEqualsAttentionOverPrefix) {
  torch::manual_seed(2);
  const int64_t L = 6, D = 4;
  const Qkv x = RandomQkv(1, 2, L, L, D);
  const torch::Tensor causal = torch::triu(torch::full({L, L}, -1e9), 1).view({1, 1, L, L});
  for (const bool fused : {true, false}) {
    const torch::Tensor got = Attention(x.q, x.k, x.v, causal, 0.5, 0.0, fused);
    for (int64_t i = 0; i < L; ++i) {
      const torch::Tensor expected =
          ReferenceAttention(x.q.narrow(2, i, 1), x.k.narrow(2, 0, i + 1), x.v.narrow(2, 0, i + 1), torch::Tensor(), 0.5);
      EXPECT_LT(MaxAbsDiff(got.narrow(2, i, 1), expected), 1e-5) << "row " << i << " fused " << fused;
    }
  }
}

// Keys hidden by the padding mask get exactly zero weight: changing their
// values (even to huge numbers) leaves the output unchanged.
TEST(Attention, MaskedKeysDoNotContribute) {
  torch::manual_seed(3);
  const Qkv x = RandomQkv(2, 2, 3, 5, 4);
  const torch::Tensor keep = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}, torch::kLong);
  const torch::Tensor mask = PaddingMask(keep, torch::kFloat32);
  torch::Tensor k2 = x.k.clone(), v2 = x.v.clone();
  k2.select(0, 0).narrow(1, 3, 2).fill_(100.0);
  v2.select(0, 0).narrow(1, 3, 2).fill_(1e6);
  for (const bool fused : {true, false}) {
    const torch::Tensor a = Attention(x.q, x.k, x.v, mask, 0.5, 0.0, fused);
    const torch::Tensor b = Attention(x.q, k2, v2, mask, 0.5, 0.0, fused);
    EXPECT_LT(MaxAbsDiff(a, b), 1e-6) << "fused " << fused;
  }
}

// With dropout the plain path runs and draws from torch's generator: a fixed
// seed reproduces it, it differs from the dropout-free result, and the
// dropout-free fused and plain results agree.
TEST(Attention, DropoutIsReproducibleUnderSeed) {
  torch::manual_seed(4);
  const Qkv x = RandomQkv(2, 2, 6, 6, 4);
  torch::manual_seed(100);
  const torch::Tensor a = Attention(x.q, x.k, x.v, torch::Tensor(), 0.5, 0.5, true);
  torch::manual_seed(100);
  const torch::Tensor b = Attention(x.q, x.k, x.v, torch::Tensor(), 0.5, 0.5, false);
  EXPECT_TRUE(torch::equal(a, b));
  const torch::Tensor clean = Attention(x.q, x.k, x.v, torch::Tensor(), 0.5, 0.0, true);
  EXPECT_GT(MaxAbsDiff(a, clean), 1e-3);
}

TEST(PaddingMask, ValuesShapeAndDtype) {
  const torch::Tensor keep = torch::tensor({{1, 1, 0}, {1, 0, 0}}, torch::kLong);
  const torch::Tensor m = PaddingMask(keep, torch::kFloat32);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{2, 1, 1, 3}));
  EXPECT_EQ(m.scalar_type(), torch::kFloat32);
  const torch::Tensor expected =
      torch::tensor({0.0f, 0.0f, -1e9f, 0.0f, -1e9f, -1e9f}).view({2, 1, 1, 3});
  EXPECT_TRUE(torch::equal(m, expected)) << m;
  // fp16 cannot hold -1e9: its lowest finite value is used instead of -inf.
  const torch::Tensor half = PaddingMask(keep, torch::kFloat16);
  EXPECT_EQ(half.scalar_type(), torch::kFloat16);
  EXPECT_EQ(half[0][0][0][2].item<float>(), -65504.0f);
  EXPECT_EQ(half[0][0][0][0].item<float>(), 0.0f);
  EXPECT_TRUE(torch::isfinite(half).all().item<bool>());
  // bf16 rounds -1e9 but stays finite and very negative.
  const torch::Tensor bf16 = PaddingMask(keep, torch::kBFloat16);
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::isfinite(bf16).all().item<bool>());
  EXPECT_LT(bf16[1][0][0][1].item<float>(), -9e8f);
  EXPECT_EQ(bf16[1][0][0][0].item<float>(), 0.0f);
  // A float keep mask works too.
  EXPECT_TRUE(torch::equal(PaddingMask(keep.to(torch::kFloat32), torch::kFloat32), expected));
}

TEST(SplitMergeHeads, LayoutAndRoundTrip) {
  torch::manual_seed(5);
  const int64_t B = 2, L = 5, H = 3, D = 4;
  const torch::Tensor x = torch::randn({B, L, H * D});
  const torch::Tensor heads = SplitHeads(x, H);
  ASSERT_EQ(heads.sizes(), (std::vector<int64_t>{B, H, L, D}));
  // heads[b][h][l][d] == x[b][l][h * D + d]
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t l = 0; l < L; ++l)
        EXPECT_TRUE(torch::equal(heads[b][h][l], x[b][l].narrow(0, h * D, D))) << b << " " << h << " " << l;
  const torch::Tensor merged = MergeHeads(heads);
  ASSERT_EQ(merged.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(merged, x));
  // MergeHeads is the inverse on the other side too.
  const torch::Tensor y = torch::randn({B, H, L, D});
  EXPECT_TRUE(torch::equal(SplitHeads(MergeHeads(y), H), y));
}

}  // namespace
}  // namespace instructflip
