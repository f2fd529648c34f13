#include "binflow/rng.hpp"

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {
namespace {

// Philox4x32 constants from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"
// (SC'11), the defaults of Random123: round multipliers and the Weyl key increments
// (golden ratio and sqrt(3) - 1 in 32-bit fixed point).
constexpr std::uint32_t mul0 = 0xD2511F53U;
constexpr std::uint32_t mul1 = 0xCD9E8D57U;
constexpr std::uint32_t weyl0 = 0x9E3779B9U;
constexpr std::uint32_t weyl1 = 0xBB67AE85U;
constexpr int rounds = 10;

// Below this mean inversion is cheaper than PTRS; PTRS's constants are fitted for mu >= 10
// (Hoermann 1993), so any threshold above that is valid.
constexpr double ptrs_threshold = 30.0;
// Above this a draw could overflow the uint64 result (and doubles no longer resolve +-1).
constexpr double max_mean = 0x1p62;

// Tags keeping the seed-derivation hash apart from the key derivation mix64(seed).
constexpr std::uint64_t derive_tag = 0x6A09E667F3BCC909ULL;  // frac(sqrt 2), SHA-512 IV
constexpr std::uint64_t golden64 = 0x9E3779B97F4A7C15ULL;

using Counter = std::array<std::uint32_t, 4>;
using Key = std::array<std::uint32_t, 2>;

std::uint32_t lo32(std::uint64_t x) { return static_cast<std::uint32_t>(x); }
std::uint32_t hi32(std::uint64_t x) { return static_cast<std::uint32_t>(x >> 32); }

Counter philox_round(const Counter& x, const Key& k) {
  const std::uint64_t p0 = std::uint64_t{mul0} * x[0];
  const std::uint64_t p1 = std::uint64_t{mul1} * x[2];
  return {hi32(p1) ^ x[1] ^ k[0], lo32(p1), hi32(p0) ^ x[3] ^ k[1], lo32(p0)};
}

// Block `block` of stream `index`: the index fills the upper counter words, so two
// streams of one family never share a counter and cannot overlap.
std::array<std::uint64_t, 2> stream_block(const Key& key, std::uint64_t index,
                                          std::uint64_t block) {
  const Counter out =
      detail::philox4x32_10({lo32(block), hi32(block), lo32(index), hi32(index)}, key);
  return {(std::uint64_t{out[1]} << 32) | out[0], (std::uint64_t{out[3]} << 32) | out[2]};
}

// log(k!) without std::lgamma, which writes the global `signgam` in glibc and so is not
// safe to call from several OpenMP threads.
double log_factorial(std::uint64_t k) {
  if (k < 10) {
    double f = 1.0;
    for (std::uint64_t i = 2; i <= k; ++i) f *= static_cast<double>(i);
    return std::log(f);
  }
  // Stirling series for lgamma(x), x = k + 1 >= 11: the first omitted term is below 4e-13.
  const double x = static_cast<double>(k) + 1.0;
  const double x2 = x * x;
  const double series =
      (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * x2)) / x2) / x2) / x;
  return (x - 0.5) * std::log(x) - x + 0.5 * std::log(2.0 * std::numbers::pi) + series;
}

// Sequential search from k = 0; one uniform per variate. Stops when the remaining terms no
// longer change the rounded sum, since a u within a few ulp of 1 can lie above every partial
// sum and the loop would otherwise run until the terms underflow.
std::uint64_t poisson_inversion(RngStream& rng, double mu) {
  const double u = rng.uniform();
  double term = std::exp(-mu);
  double cdf = term;
  std::uint64_t k = 0;
  while (u > cdf) {
    term *= mu / static_cast<double>(k + 1);
    const double next = cdf + term;
    if (next == cdf) break;
    cdf = next;
    ++k;
  }
  return k;
}

// PTRS, the transformed rejection with squeeze of W. Hoermann, "The transformed rejection
// method for generating Poisson random variables", Insurance: Mathematics and Economics 12
// (1993) 39-45, algorithm PTRS; constants as published there.
std::uint64_t poisson_ptrs(RngStream& rng, double mu) {
  const double smu = std::sqrt(mu);
  const double b = 0.931 + 2.53 * smu;
  const double a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
  const double v_r = 0.9277 - 3.6224 / (b - 2.0);
  const double log_mu = std::log(mu);
  for (;;) {
    const double u = rng.uniform() - 0.5;
    const double v = rng.uniform();
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2.0 * a / us + b) * u + mu + 0.43);
    if (us >= 0.07 && v <= v_r) return static_cast<std::uint64_t>(k);
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    const auto n = static_cast<std::uint64_t>(k);
    const double lhs = std::log(v * inv_alpha / (a / (us * us) + b));
    if (lhs <= -mu + k * log_mu - log_factorial(n)) return n;
  }
}

}  // namespace

namespace detail {

std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                           std::array<std::uint32_t, 2> key) {
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) key = {key[0] + weyl0, key[1] + weyl1};
    counter = philox_round(counter, key);
  }
  return counter;
}

}  // namespace detail

std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

RngStream::RngStream(std::uint64_t seed, std::uint64_t index)
    : seed_(seed), index_(index), key_{lo32(mix64(seed)), hi32(mix64(seed))} {}

void RngStream::fill(std::uint64_t block) {
  block_ = stream_block(key_, index_, block);
  block_id_ = block;
}

double RngStream::normal() {
  const double u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double RngStream::exponential() { return -std::log(uniform()); }

std::uint64_t RngStream::poisson(double mu) {
  // The mean comes from a model evaluated by binflow, so a bad one is a bug, not user input.
  if (!(mu >= 0.0 && mu <= max_mean)) {
    throw InternalError(fmt::format("poisson: mean {} is not a number in [0, {}] (stream {}/{})",
                                    mu, max_mean, seed_, index_));
  }
  if (mu == 0.0) return 0;
  return mu < ptrs_threshold ? poisson_inversion(*this, mu) : poisson_ptrs(*this, mu);
}

std::uint64_t RngStream::at(std::uint64_t counter) const {
  const std::uint64_t block = counter >> 1;
  if (block == block_id_) return block_[counter & 1U];
  return stream_block(key_, index_, block)[counter & 1U];
}

double RngStream::uniform_at(std::uint64_t counter) const { return detail::to_unit(at(counter)); }

std::uint64_t RngStream::derive_seed(std::uint64_t salt) const {
  // Each step is a bijection of its input, so for one stream distinct salts give distinct
  // seeds; the tag keeps derived seeds off the values mix64(seed) used for keys.
  const std::uint64_t h = mix64(mix64(seed_ ^ derive_tag) + index_ * golden64 + golden64);
  return mix64(h ^ salt);
}

}  // namespace binflow
