// The ephemeris phase of SCIENCE.md section 5 against hand values (f1 and f2 terms, negative
// dt, a year of a Crab-like spin), and the pulsar time profile built on it.
#include "science/phase.hpp"

#include <cmath>
#include <numbers>
#include <utility>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "science/simulate.hpp"

namespace binflow::science {
namespace {

TEST(Phase, LinearHandValues) {
  const Ephemeris e{0.0, 0.0297, 0.0, 0.0};
  EXPECT_NEAR(e.phase(10.0), 0.297, 1e-14);
  EXPECT_NEAR(e.phase(100.0), 0.97, 1e-13);  // 2.97 turns
  EXPECT_EQ(e.cycles(100.0).turns, 2);
  EXPECT_EQ(e.phase(0.0), 0.0);
}

TEST(Phase, NegativeDtWrapsIntoZeroOne) {
  const Ephemeris e{100.0, 0.25, 0.0, 0.0};
  EXPECT_NEAR(e.phase(99.0), 0.75, 1e-15);  // -0.25 turns
  EXPECT_EQ(e.cycles(99.0).turns, -1);
  EXPECT_NEAR(e.phase(90.0), 0.5, 1e-15);  // -2.5 turns
  EXPECT_EQ(e.cycles(90.0).turns, -3);
  EXPECT_EQ(e.phase(96.0), 0.0);  // exactly -1 turn
}

TEST(Phase, FrequencyDerivativeTerms) {
  // f0 dt + f1 dt^2 / 2 + f2 dt^3 / 6 at dt = +-10: 1 + 0.5 + 0.1 = 1.6 and -1 + 0.5 - 0.1 = -0.6.
  const Ephemeris e{5.0, 0.1, 0.01, 0.0006};
  EXPECT_NEAR(e.phase(15.0), 0.6, 1e-13);
  EXPECT_EQ(e.cycles(15.0).turns, 1);
  EXPECT_NEAR(e.phase(-5.0), 0.4, 1e-13);
  EXPECT_EQ(e.cycles(-5.0).turns, -1);
  EXPECT_NEAR(e.frequency(15.0), 0.1 + 0.01 * 10 + 0.0006 * 50, 1e-15);
  // Only f1: 0.5 f1 dt^2 = 0.5 * 0.003 * 400 = 0.6 turns; only f2: 0.002 * 1000 / 6 = 1/3.
  EXPECT_NEAR((Ephemeris{0.0, 1e-300, 0.003, 0.0}.phase(-20.0)), 0.6, 1e-13);
  EXPECT_NEAR((Ephemeris{0.0, 1e-300, 0.0, 0.002}.phase(10.0)), 1.0 / 3.0, 1e-13);
  EXPECT_NEAR((Ephemeris{0.0, 1e-300, 0.0, 0.002}.phase(-10.0)), 2.0 / 3.0, 1e-13);
}

TEST(Phase, AYearOfACrabLikePulsarKeepsItsPhase) {
  // Reference from exact rational arithmetic on the same doubles (Python fractions):
  // 944865089.94243483282... turns. Plain double arithmetic is off by 4.5e-8 of a turn.
  const Ephemeris e{0.0, 29.946923, -3.77535e-10, 1.2e-20};
  const Ephemeris::Cycles c = e.cycles(31557600.0);
  EXPECT_EQ(c.turns, 944865089);
  EXPECT_NEAR(c.phase, 0.9424348328260221, 1e-9);
}

TEST(Phase, PhaseAlwaysInHalfOpenUnitInterval) {
  const Ephemeris e{123.456, 0.0297, -1e-7, 3e-11};
  for (double t = -5000.0; t < 5000.0; t += 0.37) {
    const double p = e.phase(t);
    ASSERT_GE(p, 0.0);
    ASSERT_LT(p, 1.0);
  }
}

TEST(Phase, ValidateNamesTheParameter) {
  EXPECT_NO_THROW(validate_ephemeris(Ephemeris{}));
  try {
    validate_ephemeris(Ephemeris{0.0, 0.0, 0.0, 0.0});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("f0"), std::string::npos);
  }
  try {
    validate_ephemeris(Ephemeris{0.0, 1.0, NAN, 0.0});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("f1"), std::string::npos);
  }
}

// Simpson on a fine grid: the reference for the profile's integrals.
double simpson(const TimeProfile& f, double t0, double t1, int n) {
  const double h = (t1 - t0) / n;
  double sum = f(t0) + f(t1);
  for (int i = 1; i < n; ++i) sum += (i % 2 ? 4.0 : 2.0) * f(t0 + i * h);
  return sum * h / 3.0;
}

TEST(PulsarProfile, MeanOverATurnIsOne) {
  const Ephemeris e{0.0, 0.0297, 0.0, 0.0};
  const TimeProfile p = TimeProfile::pulsar(0.5, 0.3, 0.05, e);
  const double period = 1.0 / e.f0;
  EXPECT_NEAR(p.integral(17.0, 17.0 + period) / period, 1.0, 1e-12);
  EXPECT_NEAR(p.integral(0.0, 7200.0) / 7200.0, 1.0, 1e-3);  // 213.84 turns
  // The peak, and the off-pulse level 1 - pulsed_fraction.
  const double g_peak = 1.0 / (0.05 * std::sqrt(2.0 * std::numbers::pi));
  EXPECT_NEAR(p(0.3 / e.f0), 0.5 + 0.5 * g_peak, 1e-12);
  EXPECT_NEAR(p(0.8 / e.f0), 0.5, 1e-12);
  EXPECT_NEAR(p.max(0.0, 1.0), 0.5 + 0.5 * g_peak, 1e-12);
}

TEST(PulsarProfile, IntegralsMatchQuadrature) {
  const TimeProfile linear =
      TimeProfile::pulsar(0.7, 0.95, 0.08, Ephemeris{-40.0, 0.0297, 0.0, 0.0});
  for (const auto& [t0, t1] : {std::pair{0.0, 60.0}, {5.0, 7.5}, {-100.0, 333.0}}) {
    EXPECT_NEAR(linear.integral(t0, t1), simpson(linear, t0, t1, 20000), 1e-9 * (t1 - t0)) << t0;
  }
  // With f1 and f2 the profile integrates by Gauss-Legendre.
  const TimeProfile spun = TimeProfile::pulsar(0.6, 0.4, 0.03, Ephemeris{10.0, 0.05, 2e-5, -1e-8});
  for (const auto& [t0, t1] : {std::pair{0.0, 60.0}, {-300.0, -200.0}, {100.0, 700.0}}) {
    EXPECT_NEAR(spun.integral(t0, t1), simpson(spun, t0, t1, 200000), 1e-9 * (t1 - t0)) << t0;
  }
}

TEST(PulsarProfile, BadParametersNameThemselves) {
  const Ephemeris e;
  EXPECT_THROW((void)TimeProfile::pulsar(1.5, 0.3, 0.05, e), UsageError);
  EXPECT_THROW((void)TimeProfile::pulsar(0.5, 0.3, 0.0, e), UsageError);
  EXPECT_THROW((void)TimeProfile::pulsar(0.5, 0.3, 0.6, e), UsageError);
  EXPECT_THROW((void)TimeProfile::pulsar(0.5, 0.3, 0.05, Ephemeris{0.0, -1.0, 0.0, 0.0}),
               UsageError);
}

}  // namespace
}  // namespace binflow::science
