#pragma once
// Counter-based random streams (Philox4x32-10, Salmon et al., SC'11) keyed by
// (seed, global index): the numbers a bin draws do not depend on which rank or thread
// runs it, and draw j of a stream can be computed directly (for parallel loops whose
// result must not depend on the thread count).
#include <array>
#include <cstdint>
#include <limits>

namespace binflow {

/// A stream of 64-bit random numbers; satisfies UniformRandomBitGenerator.
/// Not thread-safe: give each thread its own stream (or use at()).
class RngStream {
public:
  using result_type = std::uint64_t;

  /// Stream `index` (a bin's global index) of the family `seed`.
  RngStream(std::uint64_t seed, std::uint64_t index);

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  /// One Philox block (128 bits) serves two consecutive draws: it is computed once, when
  /// the first of them is drawn (about 150 instructions; the draw itself is a few).
  result_type operator()() {
    const std::uint64_t block = counter_ >> 1;
    if (block != block_id_) fill(block);
    return block_[counter_++ & 1U];
  }

  /// Uniform in (0, 1), never exactly 0 or 1: the midpoints of 2^52 equal cells. (53 bits
  /// plus the half-cell offset would round the top cell to exactly 1.0.)
  double uniform();
  /// Standard normal (Box-Muller on two uniforms; no cached second value, so the
  /// stream position after k calls is always 2k uniforms).
  double normal();
  /// Exponential with mean 1.
  double exponential();
  /// Poisson with mean `mu` >= 0 (inversion for mu < 30, PTRS transformed rejection above).
  std::uint64_t poisson(double mu);

  /// Skips `n` values, as n calls of operator() would, without computing them: a draw
  /// whose value turns out not to be needed costs nothing, and the draws after it are the
  /// same as if it had been made.
  void discard(std::uint64_t n) { counter_ += n; }

  /// The 64-bit value at position `counter` of this stream, without advancing it.
  [[nodiscard]] std::uint64_t at(std::uint64_t counter) const;
  /// Uniform (0,1) at position `counter`, without advancing the stream.
  [[nodiscard]] double uniform_at(std::uint64_t counter) const;

  /// Seed of a child family derived from this stream's (seed, index) and `salt`; a
  /// nested tool invoked in a bin uses it, so its draws depend only on the bin.
  [[nodiscard]] std::uint64_t derive_seed(std::uint64_t salt) const;

  [[nodiscard]] std::uint64_t seed() const { return seed_; }
  [[nodiscard]] std::uint64_t index() const { return index_; }
  /// Number of 64-bit values drawn so far.
  [[nodiscard]] std::uint64_t position() const { return counter_; }

private:
  void fill(std::uint64_t block);

  std::uint64_t seed_;
  std::uint64_t index_;
  std::array<std::uint32_t, 2> key_;
  std::uint64_t counter_ = 0;
  std::array<std::uint64_t, 2> block_{};
  std::uint64_t block_id_ = std::numeric_limits<std::uint64_t>::max();
};

/// SplitMix64 finaliser: a bijective 64-bit mix used to derive keys and seeds.
std::uint64_t mix64(std::uint64_t x);

namespace detail {
/// The raw Philox4x32-10 bijection (counter words 0..3, key words 0..1), exposed so that
/// the tests can check it against the Random123 known-answer vectors.
std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                           std::array<std::uint32_t, 2> key);
/// The map from a 64-bit value to the open interval (0, 1) used by uniform().
/// 52 bits, not 53: (k + 0.5) * 2^-52 is exact for every k < 2^52, so the result is the
/// midpoint of its cell and lies in [2^-53, 1 - 2^-53]; with 53 bits the top cell's
/// midpoint 1 - 2^-54 is not representable and rounds to exactly 1.0.
inline double to_unit(std::uint64_t bits) {
  return (static_cast<double>(bits >> 12) + 0.5) * 0x1p-52;
}
}  // namespace detail

inline double RngStream::uniform() { return detail::to_unit((*this)()); }

}  // namespace binflow
