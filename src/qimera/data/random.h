// Deterministic randomness for data loading: shuffles and augmentations are pure functions of
// (seed, epoch, position), computed with a fully specified generator, so they are the same on every
// platform, LibTorch version and thread schedule, and a resumed run sees the same batches.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace qimera::data {

/// SplitMix64 (Steele, Lea, Flood 2014).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  /// Uniform in [0, n), without modulo bias; n > 0.
  uint64_t below(uint64_t n);

 private:
  uint64_t state_;
};

/// One seed from several values (seed, epoch, position, stream tag), well mixed.
uint64_t derive_seed(std::initializer_list<uint64_t> parts);

/// A uniformly random permutation of 0..n-1 (Fisher-Yates).
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed);

}  // namespace qimera::data
