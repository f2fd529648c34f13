// Random streams: known answers, reproducibility, random access, and loose distribution
// checks. Streams are seeded, so every statistical check is deterministic; tolerances are
// five standard errors so that a correct generator passes for any fixed seed we might pick.
#include "binflow/rng.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"

namespace {

using binflow::RngStream;

constexpr int kDraws = 1'000'000;

static_assert(std::uniform_random_bit_generator<RngStream>);

struct Moments {
  double mean = 0.0;
  double variance = 0.0;
};

template <typename Draw>
Moments moments(int n, Draw draw) {
  // Welford's update: a plain sum of squares loses digits for poisson(1e4).
  double mean = 0.0;
  double m2 = 0.0;
  for (int i = 1; i <= n; ++i) {
    const double x = draw();
    const double delta = x - mean;
    mean += delta / i;
    m2 += delta * (x - mean);
  }
  return {mean, m2 / (n - 1)};
}

// Chi-square of observed counts against expected ones, pooling cells with expectation < 5.
struct ChiSquare {
  double value = 0.0;
  int dof = 0;
};

ChiSquare chi_square(const std::vector<double>& observed, const std::vector<double>& expected) {
  ChiSquare result;
  double obs = 0.0;
  double exp = 0.0;
  int cells = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    obs += observed[i];
    exp += expected[i];
    if (exp >= 5.0) {
      result.value += (obs - exp) * (obs - exp) / exp;
      ++cells;
      obs = exp = 0.0;
    }
  }
  if (exp > 0.0) {
    result.value += (obs - exp) * (obs - exp) / std::max(exp, 1e-300);
    ++cells;
  }
  result.dof = cells - 1;
  return result;
}

// Loose: a chi-square with d degrees of freedom rarely exceeds d + 5 sqrt(2d).
void expect_chi_square_ok(const ChiSquare& chi2) {
  EXPECT_LT(chi2.value, chi2.dof + 5.0 * std::sqrt(2.0 * chi2.dof)) << "dof " << chi2.dof;
}

// ---- known answers ----

TEST(Philox, MatchesRandom123KnownAnswerVectors) {
  // Random123 v1.14 tests/kat_vectors, "philox4x32 10" lines: counter, key, expected output.
  struct Kat {
    std::array<std::uint32_t, 4> counter;
    std::array<std::uint32_t, 2> key;
    std::array<std::uint32_t, 4> expected;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& kat : kats) {
    EXPECT_EQ(binflow::detail::philox4x32_10(kat.counter, kat.key), kat.expected);
  }
}

TEST(Mix64, MatchesSplitMix64Reference) {
  // SplitMix64 seeded with 0 outputs mix64(k * golden) for k = 1, 2, ... (Vigna's
  // splitmix64.c): first two outputs.
  constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ULL;
  EXPECT_EQ(binflow::mix64(golden), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(binflow::mix64(2 * golden), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(binflow::mix64(0), 0U);
}

TEST(RngStream, PacksPhiloxWordsLowFirst) {
  // Seed 0 has key mix64(0) = (0, 0) and stream 0's first block has counter (0, 0, 0, 0):
  // the first two values are the all-zero known answer, low word first.
  RngStream rng(0, 0);
  EXPECT_EQ(rng(), 0xe169c58d6627e8d5ULL);
  EXPECT_EQ(rng(), 0x9b00dbd8bc57ac4cULL);
}

TEST(RngStream, RegressionValues) {
  // Computed once with this implementation (not an external reference): guards the key and
  // counter layout, which fix every simulated file, against accidental change.
  RngStream rng(12345, 678);
  EXPECT_EQ(rng(), 0x03d06be3e58aedc0ULL);
  EXPECT_EQ(rng(), 0x96c345e7cf48ef19ULL);
  EXPECT_EQ(rng(), 0x392c77179401c9feULL);
  EXPECT_EQ(rng.uniform(), 0.52528270911522135);
  EXPECT_DOUBLE_EQ(rng.normal(), -0.40844171637540566);  // libm log/cos: allow a few ulp
  EXPECT_EQ(rng.poisson(5.0), 3U);
  EXPECT_EQ(rng.poisson(100.0), 91U);
  EXPECT_EQ(rng.position(), 9U);
  EXPECT_EQ(rng.derive_seed(1), 0x383e46d0f32b36bdULL);
}

// ---- streams ----

TEST(RngStream, SameSeedAndIndexGiveSameStream) {
  RngStream a(42, 7);
  RngStream b(42, 7);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a(), b()) << "draw " << i;
}

TEST(RngStream, DifferentIndexOrSeedGiveDifferentStreams) {
  std::set<std::uint64_t> firsts;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    for (std::uint64_t index = 0; index < 50; ++index) {
      RngStream rng(seed, index);
      firsts.insert(rng());
    }
  }
  EXPECT_EQ(firsts.size(), 20U * 50U);

  RngStream a(1, 2);
  RngStream b(1, 3);
  int equal = 0;
  for (int i = 0; i < 1000; ++i) equal += a() == b() ? 1 : 0;
  EXPECT_EQ(equal, 0);
}

TEST(RngStream, AtAgreesWithSequentialDrawsAndDoesNotAdvance) {
  RngStream sequential(99, 5);
  const RngStream random_access(99, 5);
  std::vector<std::uint64_t> values(101);
  for (auto& value : values) value = sequential();
  EXPECT_EQ(sequential.position(), 101U);
  for (std::uint64_t i = 0; i < values.size(); ++i) EXPECT_EQ(random_access.at(i), values[i]);
  for (std::uint64_t i : {100U, 3U, 0U, 57U}) EXPECT_EQ(random_access.at(i), values[i]);
  EXPECT_EQ(random_access.position(), 0U);
  EXPECT_EQ(sequential.at(10), values[10]);
  EXPECT_EQ(sequential.position(), 101U);

  RngStream uniforms(99, 5);
  for (std::uint64_t i = 0; i < 20; ++i) EXPECT_EQ(random_access.uniform_at(i), uniforms.uniform());
}

TEST(RngStream, DiscardSkipsExactlyWhatDrawsWould) {
  // Every skip length from every lane of a block, so that a skip ending inside the cached
  // block, at its second lane, or blocks away all land on the sequential stream.
  RngStream sequential(17, 3);
  std::vector<std::uint64_t> values(64);
  for (auto& value : values) value = sequential();
  for (std::uint64_t start = 0; start < 4; ++start) {
    for (std::uint64_t skip = 0; skip < 8; ++skip) {
      RngStream rng(17, 3);
      for (std::uint64_t i = 0; i < start; ++i) ASSERT_EQ(rng(), values[i]);
      rng.discard(skip);
      EXPECT_EQ(rng.position(), start + skip);
      EXPECT_EQ(rng(), values[start + skip]) << "start " << start << " skip " << skip;
      EXPECT_EQ(rng(), values[start + skip + 1]) << "start " << start << " skip " << skip;
      // A value behind the position, read back without advancing (cached block or not).
      EXPECT_EQ(rng.at(start), values[start]);
      EXPECT_EQ(rng.uniform_at(start + skip), binflow::detail::to_unit(values[start + skip]));
      EXPECT_EQ(rng.position(), start + skip + 2);
    }
  }
}

TEST(RngStream, BlockCacheGivesTheUncachedStream) {
  // The values drawn through the cache, the same values computed from the bijection one
  // block each: lane 0 of block b is words (0, 1) of philox(b, index), lane 1 words (2, 3).
  RngStream rng(2024, 9);
  const std::uint64_t key = binflow::mix64(2024);
  const std::array<std::uint32_t, 2> k{static_cast<std::uint32_t>(key),
                                       static_cast<std::uint32_t>(key >> 32)};
  for (std::uint32_t block = 0; block < 50; ++block) {
    const auto w = binflow::detail::philox4x32_10({block, 0U, 9U, 0U}, k);
    EXPECT_EQ(rng(), (std::uint64_t{w[1]} << 32) | w[0]) << "block " << block;
    EXPECT_EQ(rng(), (std::uint64_t{w[3]} << 32) | w[2]) << "block " << block;
  }
}

TEST(RngStream, FarCountersAreReachable) {
  const RngStream rng(3, 4);
  const std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  EXPECT_NE(rng.at(last), rng.at(last - 1));
  EXPECT_NE(rng.at(last), rng.at(1));  // lane 1 of block 2^63 - 1 vs block 0
}

TEST(RngStream, NormalUsesExactlyTwoUniforms) {
  RngStream rng(5, 6);
  for (int i = 1; i <= 10; ++i) {
    (void)rng.normal();
    EXPECT_EQ(rng.position(), 2U * i);
  }
}

TEST(RngStream, ReportsSeedAndIndex) {
  const RngStream rng(11, 22);
  EXPECT_EQ(rng.seed(), 11U);
  EXPECT_EQ(rng.index(), 22U);
}

TEST(RngStream, DeriveSeedIsDistinctAndReproducible) {
  std::set<std::uint64_t> seeds;
  for (std::uint64_t seed : {0U, 1U, 2U}) {
    for (std::uint64_t index = 0; index < 100; ++index) {
      const RngStream rng(seed, index);
      for (std::uint64_t salt = 0; salt < 10; ++salt) {
        const std::uint64_t derived = rng.derive_seed(salt);
        EXPECT_EQ(derived, RngStream(seed, index).derive_seed(salt));
        seeds.insert(derived);
      }
    }
  }
  EXPECT_EQ(seeds.size(), 3U * 100U * 10U);
  // Plain small seeds are what users type; a derived seed must not land on them or on the
  // key of its own family.
  for (std::uint64_t s = 0; s < 1000; ++s) {
    EXPECT_EQ(seeds.count(s), 0U);
    EXPECT_EQ(seeds.count(binflow::mix64(s)), 0U);
  }
}

// ---- distributions ----

TEST(Uniform, OpenIntervalAtTheExtremes) {
  EXPECT_EQ(binflow::detail::to_unit(0), 0x1p-53);
  EXPECT_EQ(binflow::detail::to_unit(std::numeric_limits<std::uint64_t>::max()), 1.0 - 0x1p-53);
  EXPECT_LT(binflow::detail::to_unit(std::numeric_limits<std::uint64_t>::max()), 1.0);
}

TEST(Uniform, MomentsHistogramAndKolmogorovSmirnov) {
  RngStream rng(2024, 1);
  std::vector<double> sample(kDraws);
  for (double& u : sample) {
    u = rng.uniform();
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  std::size_t i = 0;
  const Moments m = moments(kDraws, [&] { return sample[i++]; });
  EXPECT_NEAR(m.mean, 0.5, 5.0 * std::sqrt(1.0 / 12.0 / kDraws));
  EXPECT_NEAR(m.variance, 1.0 / 12.0, 5.0 * std::sqrt(1.0 / 180.0 / kDraws));

  constexpr int cells = 100;
  std::vector<double> observed(cells, 0.0);
  for (double u : sample) observed[static_cast<std::size_t>(u * cells)] += 1.0;
  expect_chi_square_ok(chi_square(observed, std::vector<double>(cells, double{kDraws} / cells)));

  std::sort(sample.begin(), sample.end());
  double d = 0.0;
  for (std::size_t k = 0; k < sample.size(); ++k) {
    const double n = static_cast<double>(sample.size());
    d = std::max({d, (static_cast<double>(k) + 1.0) / n - sample[k],
                  sample[k] - static_cast<double>(k) / n});
  }
  // Kolmogorov's limit distribution: P(sqrt(n) D > 1.95) = 0.001.
  EXPECT_LT(d * std::sqrt(double{kDraws}), 1.95);
}

TEST(Normal, MeanVarianceAndTails) {
  RngStream rng(7, 0);
  int beyond_two = 0;
  const Moments m = moments(kDraws, [&] {
    const double x = rng.normal();
    beyond_two += std::abs(x) > 2.0 ? 1 : 0;
    return x;
  });
  EXPECT_NEAR(m.mean, 0.0, 5.0 / std::sqrt(double{kDraws}));
  EXPECT_NEAR(m.variance, 1.0, 5.0 * std::sqrt(2.0 / kDraws));
  const double p = std::erfc(2.0 / std::sqrt(2.0));  // 0.0455
  EXPECT_NEAR(static_cast<double>(beyond_two) / kDraws, p, 5.0 * std::sqrt(p * (1 - p) / kDraws));
}

TEST(Exponential, MeanAndVariance) {
  RngStream rng(8, 0);
  const Moments m = moments(kDraws, [&] {
    const double x = rng.exponential();
    EXPECT_GT(x, 0.0);
    return x;
  });
  EXPECT_NEAR(m.mean, 1.0, 5.0 / std::sqrt(double{kDraws}));
  // Var of the sample variance of Exp(1): (mu4 - sigma^4) / n = 8 / n.
  EXPECT_NEAR(m.variance, 1.0, 5.0 * std::sqrt(8.0 / kDraws));
}

class PoissonMean : public testing::TestWithParam<double> {};

TEST_P(PoissonMean, MeanAndVarianceWithinFiveStandardErrors) {
  const double mu = GetParam();
  RngStream rng(31337, static_cast<std::uint64_t>(mu * 1000));
  const Moments m = moments(kDraws, [&] { return static_cast<double>(rng.poisson(mu)); });
  EXPECT_NEAR(m.mean, mu, 5.0 * std::sqrt(mu / kDraws));
  // Poisson: mu4 = mu (1 + 3 mu), so Var(s^2) ~ (mu + 2 mu^2) / n.
  EXPECT_NEAR(m.variance, mu, 5.0 * std::sqrt((mu + 2.0 * mu * mu) / kDraws));
}

INSTANTIATE_TEST_SUITE_P(InversionAndPtrs, PoissonMean,
                         testing::Values(0.5, 5.0, 29.0, 29.999, 30.0, 31.0, 100.0, 1e4));

class PoissonShape : public testing::TestWithParam<double> {};

TEST_P(PoissonShape, HistogramMatchesTheProbabilities) {
  const double mu = GetParam();
  RngStream rng(4242, static_cast<std::uint64_t>(mu));
  const auto cells = static_cast<std::size_t>(mu + 12.0 * std::sqrt(mu) + 20.0);
  std::vector<double> observed(cells, 0.0);
  for (int i = 0; i < kDraws; ++i) {
    observed[std::min<std::size_t>(rng.poisson(mu), cells - 1)] += 1.0;
  }
  std::vector<double> expected(cells, 0.0);
  double below = 0.0;
  for (std::size_t k = 0; k + 1 < cells; ++k) {
    const auto kd = static_cast<double>(k);
    expected[k] = kDraws * std::exp(kd * std::log(mu) - mu - std::lgamma(kd + 1.0));
    below += expected[k];
  }
  expected.back() = std::max(0.0, kDraws - below);
  expect_chi_square_ok(chi_square(observed, expected));
}

INSTANTIATE_TEST_SUITE_P(InversionAndPtrs, PoissonShape, testing::Values(0.5, 5.0, 31.0, 100.0));

TEST(Poisson, ZeroMeanGivesZeroAndBadMeansThrow) {
  RngStream rng(1, 1);
  EXPECT_EQ(rng.poisson(0.0), 0U);
  EXPECT_THROW((void)rng.poisson(-1.0), binflow::InternalError);
  EXPECT_THROW((void)rng.poisson(std::numeric_limits<double>::quiet_NaN()), binflow::InternalError);
  EXPECT_THROW((void)rng.poisson(1e19), binflow::InternalError);
  EXPECT_THROW((void)rng.poisson(std::numeric_limits<double>::infinity()), binflow::InternalError);
}

}  // namespace
