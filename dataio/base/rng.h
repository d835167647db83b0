// Counter-based randomness for data work: every random decision is a pure
// function of (seed, stream keys), so results do not depend on thread
// scheduling or world size. SplitMix64 (Steele et al.) mixes the keys; its
// output is specified bit-for-bit, unlike std::uniform_*_distribution.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace instructflip {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Hash of a list of keys (order matters).
inline uint64_t HashKeys(std::initializer_list<uint64_t> keys) {
  uint64_t h = 0x6A09E667F3BCC909ull;
  for (uint64_t k : keys) h = SplitMix64(h ^ SplitMix64(k));
  return h;
}

// A small sequential generator seeded from a key hash.
class KeyedRng {
 public:
  explicit KeyedRng(uint64_t key) : state_(key) {}
  uint64_t NextU64() { return SplitMix64(state_++ * 0xD1B54A32D192ED03ull + 1); }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * (1.0 / 9007199254740992.0); }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n) (Lemire's multiply-shift; bias < 2^-64 * n, negligible).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(NextU64()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

}  // namespace instructflip
