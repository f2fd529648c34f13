// Monte Carlo trials on DL3 responses (science/dl3_simulate.hpp): the bounds the exact
// samplers rest on (psf_peak_density, energy_knots), the expected counts, the mean counts
// of many draws, the energy and theta distributions against the model's CDFs
// (Kolmogorov-Smirnov), parts and livetimes, bit-reproducibility and bad parameters.
// Responses are built in memory from tables (an IrfSet), with a 3-Gaussian and a table PSF
// whose energy axis differs from the effective area's, so that knots fall between the
// likelihood's Simpson nodes.
#include "science/dl3_simulate.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/rng.hpp"
#include "science/dl3_irf.hpp"
#include "science/dl3_response.hpp"
#include "science/integrate.hpp"
#include "science/likelihood.hpp"
#include "usage_message.hpp"

namespace {

namespace dl3 = binflow::science::dl3;
using binflow::RngStream;
using binflow::UsageError;
using binflow::science::FitSettings;
using binflow::science::RoiEvents;

constexpr double pi = std::numbers::pi;
constexpr double crab_n0 = 3.5e-11;
constexpr double crab_gamma = 2.5;
// Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) = 0.001 for n -> infinity.
constexpr double ks_bound = 1.95;

// ---- an instrument in memory ----

dl3::IrfAxis energy_axis(double lo, double hi, int bins) {
  dl3::IrfAxis a{.name = "ENERG", .log = true, .edges = {}, .nodes = {}};
  for (int i = 0; i <= bins; ++i) a.edges.push_back(lo * std::pow(hi / lo, double(i) / bins));
  for (int i = 0; i < bins; ++i)
    a.nodes.push_back(0.5 * (std::log(a.edges[i]) + std::log(a.edges[i + 1])));
  return a;
}

dl3::IrfAxis linear_axis(const std::string& name, double lo, double hi, int bins) {
  dl3::IrfAxis a{.name = name, .log = false, .edges = {}, .nodes = {}};
  for (int i = 0; i <= bins; ++i) a.edges.push_back(lo + (hi - lo) * i / bins);
  for (int i = 0; i < bins; ++i) a.nodes.push_back(0.5 * (a.edges[i] + a.edges[i + 1]));
  return a;
}

double centre(const dl3::IrfAxis& a, std::size_t i) {
  return a.log ? std::exp(a.nodes[i]) : a.nodes[i];
}

// A table over (energy, offset[, rad]) from f at the bin centres, energy fastest.
dl3::IrfTable table2(const dl3::IrfAxis& e, const dl3::IrfAxis& o,
                     const std::function<double(double, double)>& f) {
  dl3::IrfTable t{.axes = {e, o}, .values = {}};
  for (std::size_t j = 0; j < o.size(); ++j) {
    for (std::size_t i = 0; i < e.size(); ++i) t.values.push_back(f(centre(e, i), centre(o, j)));
  }
  return t;
}

dl3::IrfTable table3(const dl3::IrfAxis& e, const dl3::IrfAxis& o, const dl3::IrfAxis& r,
                     const std::function<double(double, double, double)>& f) {
  dl3::IrfTable t{.axes = {e, o, r}, .values = {}};
  for (std::size_t k = 0; k < r.size(); ++k) {
    for (std::size_t j = 0; j < o.size(); ++j) {
      for (std::size_t i = 0; i < e.size(); ++i) {
        t.values.push_back(f(centre(e, i), centre(o, j), centre(r, k)));
      }
    }
  }
  return t;
}

// SCIENCE.md section 4's instrument, with an offset dependence.
double psf_sigma(double e, double o) {
  return (0.03 + 0.07 * std::exp(-std::log10(e / 0.1) / 1.028)) * (1.0 + 0.1 * o);
}
double gauss2d(double theta, double sigma) {
  return std::exp(-0.5 * theta * theta / (sigma * sigma)) / (2.0 * pi * sigma * sigma);
}

dl3::IrfSet instrument(bool psf_table) {
  const dl3::IrfAxis energy = energy_axis(0.03, 100.0, 20);
  const dl3::IrfAxis psf_energy = energy_axis(0.02, 200.0, 13);
  const dl3::IrfAxis bkg_energy = energy_axis(0.03, 100.0, 15);
  const dl3::IrfAxis offset = linear_axis("THETA", 0.0, 3.0, 6);
  dl3::IrfSet irf;
  irf.aeff = std::make_shared<dl3::EffectiveArea>(dl3::EffectiveArea{
      .source = "aeff",
      .table =
          table2(energy, offset,
                 [](double e, double o) { return 4e9 * -std::expm1(-e / 0.1) * (1.0 - 0.15 * o); }),
      .lo_threshold = {},
      .hi_threshold = {}});
  auto psf = std::make_shared<dl3::Psf>();
  psf->source = "psf";
  if (psf_table) {
    // A core and a tail three times wider, as a radial profile.
    const dl3::IrfAxis rad = linear_axis("RAD", 0.0, 1.0, 200);
    psf->model = dl3::PsfTable{table3(psf_energy, offset, rad, [](double e, double o, double t) {
      const double s = psf_sigma(e, o);
      return 0.9 * gauss2d(t, s) + 0.1 * gauss2d(t, 3.0 * s);
    })};
  } else {
    const auto constant = [&](double v) {
      return table2(psf_energy, offset, [v](double, double) { return v; });
    };
    psf->model =
        dl3::Psf3Gauss{.sigma_1 = table2(psf_energy, offset, psf_sigma),
                       .sigma_2 = table2(psf_energy, offset,
                                         [](double e, double o) { return 2.5 * psf_sigma(e, o); }),
                       .sigma_3 = constant(1.0),
                       .scale = constant(1.0),
                       .ampl_2 = constant(0.05),
                       .ampl_3 = constant(0.0)};
  }
  irf.psf = psf;
  irf.bkg = std::make_shared<dl3::Background>(
      dl3::Background{.source = "bkg",
                      .irf_class = dl3::IrfClass::bkg_2d,
                      .table = table2(bkg_energy, offset,
                                      [](double e, double o) {
                                        return 0.75 * std::pow(e, -2.7) * -std::expm1(-e / 0.1) *
                                               (1.0 - 0.05 * o * o);
                                      }),
                      .floor = 1e-38});
  return irf;
}

// The source sits `offset` deg north of the pointing.
dl3::ObservationResponse response(bool psf_table, double offset, double livetime_fraction) {
  return {instrument(psf_table), 83.6331, 22.0145 - offset, 83.6331, 22.0145, livetime_fraction};
}

// Observation 0: 3 Gaussians at 0.5 deg; observation 1: a table PSF at 1.1 deg.
std::vector<dl3::TrialObservation> two_observations(double livetime_0, double livetime_1) {
  return {{response(false, 0.5, 0.95), livetime_0}, {response(true, 1.1, 0.9), livetime_1}};
}

FitSettings settings(double emin = 0.1, double emax = 100.0, double theta_max = 0.2) {
  FitSettings s;
  s.emin = emin;
  s.emax = emax;
  s.theta_max = theta_max;
  return s;
}

// ---- statistics ----

// sqrt(n) times the Kolmogorov-Smirnov distance of the values' CDF (`pit`: the model's
// CDF at each value) from the uniform one.
double ks_statistic(std::vector<double> pit) {
  std::sort(pit.begin(), pit.end());
  const auto n = static_cast<double>(pit.size());
  double d = 0.0;
  for (std::size_t i = 0; i < pit.size(); ++i) {
    d = std::max(
        {d, (static_cast<double>(i) + 1.0) / n - pit[i], pit[i] - static_cast<double>(i) / n});
  }
  return std::sqrt(n) * d;
}

// The CDF of a density in E on [emin, emax]: trapezoids in ln E on a fine grid (error
// ~1e-9, far below the KS resolution of ~1e-2 / sqrt(n)), linear between grid points.
class EnergyCdf {
public:
  EnergyCdf(const std::function<double(double)>& density, double emin, double emax,
            int points = 200000)
      : u0_(std::log(emin)), h_((std::log(emax) - u0_) / points) {
    double previous = density(emin) * emin;
    cdf_.push_back(0.0);
    for (int k = 1; k <= points; ++k) {
      const double e = std::exp(u0_ + h_ * k);
      const double f = density(e) * e;
      cdf_.push_back(cdf_.back() + 0.5 * h_ * (previous + f));
      previous = f;
    }
    for (double& c : cdf_) c /= cdf_.back();
  }
  double operator()(double e) const {
    const double x = (std::log(e) - u0_) / h_;
    const auto k =
        static_cast<std::size_t>(std::clamp(std::floor(x), 0.0, double(cdf_.size() - 2)));
    const double w = std::clamp(x - double(k), 0.0, 1.0);
    return (1.0 - w) * cdf_[k] + w * cdf_[k + 1];
  }

private:
  double u0_;
  double h_;
  std::vector<double> cdf_;
};

// The events of part `o`.
struct Part {
  std::vector<double> energy;
  std::vector<double> theta;
};

Part part(const RoiEvents& events, std::size_t o) {
  std::size_t first = 0;
  for (std::size_t k = 0; k < o; ++k) first += events.parts.at(k).count;
  const std::size_t last = first + events.parts.at(o).count;
  return {{events.energy.begin() + first, events.energy.begin() + last},
          {events.theta.begin() + first, events.theta.begin() + last}};
}

using binflow::testing_support::usage_message;

// ---- the response's bounds ----

TEST(Dl3Simulate, PsfPeakDensityBoundsTheDensityAndIsAttained) {
  for (const bool table : {false, true}) {
    const dl3::ObservationResponse r = response(table, 1.1, 0.9);
    for (const double e : {0.01, 0.05, 0.3, 1.0, 7.0, 150.0, 500.0}) {
      double largest = 0.0;
      for (int k = 0; k <= 24000; ++k) largest = std::max(largest, r.psf_density(e, k * 5e-5));
      const double peak = r.psf_peak_density(e);
      EXPECT_LE(largest, peak * (1.0 + 1e-14)) << table << " " << e;
      // The table's profile peaks at theta = 0, its extrapolation above the first node.
      EXPECT_NEAR(largest, peak, 1e-13 * peak) << table << " " << e;
    }
  }
}

TEST(Dl3Simulate, BetweenEnergyKnotsAeffIsLinearAndBkgLogLinearInLnE) {
  const dl3::ObservationResponse r = response(true, 1.1, 0.9);
  const std::vector<double> knots = r.energy_knots();
  ASSERT_TRUE(std::is_sorted(knots.begin(), knots.end()));
  EXPECT_EQ(std::adjacent_find(knots.begin(), knots.end()), knots.end());
  // The edges and centres of the three energy axes.
  std::vector<double> expected;
  for (const dl3::IrfAxis& a :
       {energy_axis(0.03, 100.0, 20), energy_axis(0.02, 200.0, 13), energy_axis(0.03, 100.0, 15)}) {
    expected.insert(expected.end(), a.edges.begin(), a.edges.end());
    for (std::size_t i = 0; i < a.size(); ++i) expected.push_back(centre(a, i));
  }
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  EXPECT_EQ(knots, expected);
  for (std::size_t k = 0; k + 1 < knots.size(); ++k) {
    const double u0 = std::log(knots[k]);
    const double u1 = std::log(knots[k + 1]);
    if (knots[k] < 0.03 || knots[k + 1] > 100.0) continue;  // aeff and bkg are 0 outside
    for (const double w : {0.25, 0.5, 0.9}) {
      const double e = std::exp((1.0 - w) * u0 + w * u1);
      const double aeff = (1.0 - w) * r.aeff(knots[k]) + w * r.aeff(knots[k + 1]);
      EXPECT_NEAR(r.aeff(e), aeff, 1e-9 * aeff) << e;
      const double log_bkg =
          (1.0 - w) * std::log(r.bkg_rate(knots[k])) + w * std::log(r.bkg_rate(knots[k + 1]));
      EXPECT_NEAR(std::log(r.bkg_rate(e)), log_bkg, 1e-9) << e;
    }
  }
}

// ---- expected counts ----

TEST(Dl3Simulate, ExpectedCountsAreTheLikelihoodsIntegrals) {
  const FitSettings s = settings();
  const dl3::RoiSimulator sim(two_observations(1800.0, 1200.0), s, crab_n0, crab_gamma, 1.0);
  ASSERT_EQ(sim.observations(), 2U);
  const std::vector<dl3::TrialObservation> obs = two_observations(1800.0, 1200.0);
  for (std::size_t o = 0; o < 2; ++o) {
    const dl3::ObservationResponse& r = obs[o].response;
    const auto source = [&](double e) {
      return std::pow(e, -crab_gamma) * r.aeff(e) * r.psf_containment(e, s.theta_max);
    };
    const auto bkg = [&](double e) { return r.bkg_rate_per_livetime(e); };
    const double area = pi * s.theta_max * s.theta_max;
    const auto [expected_source, expected_background] = sim.expected(o);
    // SCIENCE.md section 2's rule (to rounding: the products are formed in another order).
    EXPECT_DOUBLE_EQ(expected_source, obs[o].livetime * crab_n0 *
                                          binflow::science::simpson_log(source, s.emin, s.emax));
    EXPECT_DOUBLE_EQ(expected_background,
                     obs[o].livetime * area * binflow::science::simpson_log(bkg, s.emin, s.emax));
    // ... which differs from the exact integral by Simpson's error over the kinks of the
    // interpolated response (measured 1.2e-5 for the background of these coarse axes).
    const double fine_source = binflow::science::simpson_log(source, s.emin, s.emax, 1 << 16);
    const double fine_bkg = binflow::science::simpson_log(bkg, s.emin, s.emax, 1 << 16);
    EXPECT_NEAR(expected_source, obs[o].livetime * crab_n0 * fine_source, 3e-5 * expected_source);
    EXPECT_NEAR(expected_background, obs[o].livetime * area * fine_bkg, 3e-5 * expected_background);
    std::printf(
        "observation %zu: expected %.2f source, %.2f background; Simpson - exact: %.1e, %.1e\n", o,
        expected_source, expected_background,
        expected_source / (obs[o].livetime * crab_n0 * fine_source) - 1.0,
        expected_background / (obs[o].livetime * area * fine_bkg) - 1.0);
    // Thousands of each in 30 minutes, as SCIENCE.md section 4 says of this instrument.
    EXPECT_GT(expected_source, 1000.0);
    EXPECT_GT(expected_background, 1000.0);
  }
  const dl3::RoiSimulator scaled(two_observations(3600.0, 1200.0), s, 2 * crab_n0, crab_gamma, 0.5);
  EXPECT_DOUBLE_EQ(scaled.expected(0).first, 4.0 * sim.expected(0).first);
  EXPECT_DOUBLE_EQ(scaled.expected(0).second, sim.expected(0).second);
  EXPECT_DOUBLE_EQ(scaled.expected(1).second, 0.5 * sim.expected(1).second);
}

TEST(Dl3Simulate, MeanCountsOverManyDrawsAreTheExpectedCounts) {
  const FitSettings s = settings();
  // Source only and background only, so that each count is seen alone.
  const dl3::RoiSimulator source(two_observations(300.0, 200.0), s, crab_n0, crab_gamma, 0.0);
  const dl3::RoiSimulator background(two_observations(300.0, 200.0), s, 0.0, crab_gamma, 1.0);
  const int draws = 400;
  for (const auto* sim : {&source, &background}) {
    std::vector<double> sum(2, 0.0);
    std::vector<double> sum2(2, 0.0);
    for (int k = 0; k < draws; ++k) {
      RngStream rng(11, static_cast<std::uint64_t>(k));
      const RoiEvents events = sim->draw(rng);
      for (std::size_t o = 0; o < 2; ++o) {
        const auto n = static_cast<double>(events.parts[o].count);
        sum[o] += n;
        sum2[o] += n * n;
      }
    }
    for (std::size_t o = 0; o < 2; ++o) {
      const auto [mu_s, mu_b] = sim->expected(o);
      const double mu = mu_s + mu_b;
      const double mean = sum[o] / draws;
      const double variance = (sum2[o] - draws * mean * mean) / (draws - 1);
      EXPECT_NEAR(mean, mu, 4.0 * std::sqrt(mu / draws)) << o;
      // Poisson: the variance is the mean (its relative error is sqrt(2 / draws) = 7%).
      EXPECT_NEAR(variance / mu, 1.0, 4.0 * std::sqrt(2.0 / draws)) << o;
    }
  }
}

// ---- distributions ----

TEST(Dl3Simulate, SourceEnergiesFollowTheModelSpectrum) {
  // emin below the aeff axis, emax above it: the source is 0 on parts of [emin, emax].
  const FitSettings s = settings(0.02, 150.0, 0.2);
  const double gamma = 2.1;
  const dl3::RoiSimulator sim(two_observations(20000.0, 20000.0), s, crab_n0, gamma, 0.0);
  RngStream rng(5, 0);
  const RoiEvents events = sim.draw(rng);
  const std::vector<dl3::TrialObservation> obs = two_observations(1.0, 1.0);
  for (std::size_t o = 0; o < 2; ++o) {
    const dl3::ObservationResponse& r = obs[o].response;
    const EnergyCdf cdf(
        [&](double e) {
          return std::pow(e, -gamma) * r.aeff(e) * r.psf_containment(e, s.theta_max);
        },
        s.emin, s.emax);
    const Part p = part(events, o);
    ASSERT_GT(p.energy.size(), 30000U);
    std::vector<double> pit;
    for (const double e : p.energy) {
      ASSERT_GE(e, 0.03 * (1.0 - 1e-12));  // the aeff axis's edges
      ASSERT_LE(e, 100.0 * (1.0 + 1e-12));
      pit.push_back(cdf(e));
    }
    const double ks = ks_statistic(pit);
    std::printf("source energies, observation %zu: %zu events, sqrt(n) D = %.3f\n", o,
                p.energy.size(), ks);
    EXPECT_LT(ks, ks_bound) << o;
  }
}

TEST(Dl3Simulate, BackgroundEnergiesFollowTheBackgroundRate) {
  const FitSettings s = settings(0.05, 150.0, 0.3);
  const dl3::RoiSimulator sim(two_observations(8000.0, 8000.0), s, 0.0, crab_gamma, 1.3);
  RngStream rng(6, 0);
  const RoiEvents events = sim.draw(rng);
  const std::vector<dl3::TrialObservation> obs = two_observations(1.0, 1.0);
  for (std::size_t o = 0; o < 2; ++o) {
    const dl3::ObservationResponse& r = obs[o].response;
    const EnergyCdf cdf([&](double e) { return r.bkg_rate(e); }, s.emin, s.emax);
    const Part p = part(events, o);
    ASSERT_GT(p.energy.size(), 30000U);
    std::vector<double> energy_pit;
    std::vector<double> theta_pit;  // (theta / theta_max)^2 is uniform on a flat disc
    for (std::size_t i = 0; i < p.energy.size(); ++i) {
      ASSERT_LE(p.energy[i], 100.0 * (1.0 + 1e-12));  // the background's axis ends there
      energy_pit.push_back(cdf(p.energy[i]));
      theta_pit.push_back(std::pow(p.theta[i] / s.theta_max, 2));
    }
    const double ks_energy = ks_statistic(energy_pit);
    const double ks_theta = ks_statistic(theta_pit);
    std::printf("background, observation %zu: %zu events, sqrt(n) D = %.3f (E), %.3f (theta)\n", o,
                p.energy.size(), ks_energy, ks_theta);
    EXPECT_LT(ks_energy, ks_bound) << o;
    EXPECT_LT(ks_theta, ks_bound) << o;
  }
}

TEST(Dl3Simulate, SourceThetaGivenEnergyFollowsThePsfForGaussiansAndTables) {
  // theta given E has the CDF psf_containment(E, theta) / psf_containment(E, theta_max): the
  // transform of each event by its own energy's CDF is uniform.
  for (const double theta_max : {0.1, 0.3}) {
    const FitSettings s = settings(0.1, 100.0, theta_max);
    const dl3::RoiSimulator sim(two_observations(30000.0, 30000.0), s, crab_n0, crab_gamma, 0.0);
    RngStream rng(7, theta_max > 0.2 ? 1 : 0);
    const RoiEvents events = sim.draw(rng);
    const std::vector<dl3::TrialObservation> obs = two_observations(1.0, 1.0);
    for (std::size_t o = 0; o < 2; ++o) {
      const dl3::ObservationResponse& r = obs[o].response;
      const Part p = part(events, o);
      ASSERT_GT(p.energy.size(), 20000U);
      std::vector<double> pit;
      for (std::size_t i = 0; i < p.energy.size(); ++i) {
        ASSERT_GE(p.theta[i], 0.0);
        ASSERT_LT(p.theta[i], theta_max);
        pit.push_back(r.psf_containment(p.energy[i], p.theta[i]) /
                      r.psf_containment(p.energy[i], theta_max));
      }
      const double ks = ks_statistic(pit);
      std::printf("source theta | E, %s PSF, theta_max %.1f: %zu events, sqrt(n) D = %.3f\n",
                  o == 0 ? "3-Gaussian" : "table", theta_max, p.energy.size(), ks);
      EXPECT_LT(ks, ks_bound) << o << " " << theta_max;
    }
  }
}

// ---- the fit of the trials ----

TEST(Dl3Simulate, PullsOfTheDl3FitAreStandardNormal) {
  // SCIENCE.md section 6's check (there on >= 1000 trials within 0.1 and [0.9, 1.1]) with
  // the fitter built from the same responses: 400 trials give the mean to +-0.05 and the
  // width to +-0.035 (1 sigma), so the bounds are 3 and 4 sigma.
  FitSettings s = settings();
  s.calc_ts = false;
  s.calc_ulim = false;
  const std::vector<dl3::TrialObservation> obs = two_observations(600.0, 400.0);
  const binflow::science::BinFitter fitter({obs[0].response, obs[1].response}, s);
  const double beta = 1.0;
  const dl3::RoiSimulator sim(obs, s, crab_n0, s.gamma_ref, beta);
  const int trials = 400;
  std::vector<double> n0_pull;
  std::vector<double> beta_pull;
  for (int k = 0; k < trials; ++k) {
    RngStream rng(2024, static_cast<std::uint64_t>(k));
    const binflow::science::FitResult r = fitter.fit(sim.draw(rng), 1);
    ASSERT_EQ(r.status, "ok") << k << ": " << r.message;
    n0_pull.push_back((r.n0 - crab_n0) / r.n0_err);
    beta_pull.push_back((r.beta - beta) / r.beta_err);
  }
  const auto mean_and_width = [](const std::vector<double>& x) {
    const auto n = static_cast<double>(x.size());
    double sum = 0.0;
    double sum2 = 0.0;
    for (const double v : x) {
      sum += v;
      sum2 += v * v;
    }
    const double mean = sum / n;
    return std::pair{mean, std::sqrt((sum2 - n * mean * mean) / (n - 1.0))};
  };
  const auto [n0_mean, n0_width] = mean_and_width(n0_pull);
  const auto [beta_mean, beta_width] = mean_and_width(beta_pull);
  std::printf("pulls over %d trials: N0 %.3f +- %.3f, beta %.3f +- %.3f\n", trials, n0_mean,
              n0_width, beta_mean, beta_width);
  EXPECT_LT(std::abs(n0_mean), 0.15);
  EXPECT_LT(std::abs(beta_mean), 0.15);
  EXPECT_TRUE(n0_width > 0.85 && n0_width < 1.15) << n0_width;
  EXPECT_TRUE(beta_width > 0.85 && beta_width < 1.15) << beta_width;
}

// ---- form and reproducibility ----

TEST(Dl3Simulate, OnePartPerObservationWithItsLivetime) {
  const FitSettings s = settings(0.3, 30.0, 0.15);
  std::vector<dl3::TrialObservation> obs = two_observations(600.0, 300.0);
  obs.push_back({response(false, 0.8, 1.0), 0.0});  // no livetime in the bin: an empty part
  const dl3::RoiSimulator sim(obs, s, crab_n0, crab_gamma, 1.0);
  RngStream rng(3, 9);
  const RoiEvents events = sim.draw(rng);
  ASSERT_EQ(events.parts.size(), 3U);
  std::size_t count = 0;
  for (std::size_t o = 0; o < 3; ++o) {
    EXPECT_EQ(events.parts[o].observation, o);
    EXPECT_EQ(events.parts[o].livetime, obs[o].livetime);
    count += events.parts[o].count;
  }
  EXPECT_GT(events.parts[0].count, 100U);
  EXPECT_GT(events.parts[1].count, 100U);
  EXPECT_EQ(events.parts[2].count, 0U);
  EXPECT_EQ(sim.expected(2).first, 0.0);
  EXPECT_EQ(count, events.energy.size());
  EXPECT_EQ(count, events.theta.size());
  EXPECT_EQ(events.livetime, 900.0);
  for (std::size_t i = 0; i < count; ++i) {  // inside the ROI, SCIENCE.md section 1's intervals
    EXPECT_TRUE(events.energy[i] >= s.emin && events.energy[i] <= s.emax) << events.energy[i];
    EXPECT_TRUE(events.theta[i] >= 0.0 && events.theta[i] < s.theta_max) << events.theta[i];
  }
}

TEST(Dl3Simulate, NoObservationsGiveEmptyDraws) {
  const dl3::RoiSimulator sim({}, settings(), crab_n0, crab_gamma, 1.0);
  RngStream rng(1, 1);
  const RoiEvents events = sim.draw(rng);
  EXPECT_TRUE(events.energy.empty());
  EXPECT_TRUE(events.parts.empty());
  EXPECT_EQ(events.livetime, 0.0);
  EXPECT_EQ(rng.position(), 0U);
}

TEST(Dl3Simulate, SameStreamSameBits) {
  const dl3::RoiSimulator sim(two_observations(900.0, 600.0), settings(), crab_n0, crab_gamma, 1.0);
  // Built again from the same inputs (what every rank of a trial tool does).
  const dl3::RoiSimulator rebuilt(two_observations(900.0, 600.0), settings(), crab_n0, crab_gamma,
                                  1.0);
  RngStream a(42, 17);
  RngStream b(42, 17);
  const RoiEvents first = sim.draw(a);
  const RoiEvents second = rebuilt.draw(b);
  EXPECT_EQ(a.position(), b.position());
  ASSERT_EQ(first.energy.size(), second.energy.size());
  EXPECT_EQ(first.energy, second.energy);  // operator== on doubles: bit equality (no NaN)
  EXPECT_EQ(first.theta, second.theta);
  ASSERT_EQ(first.parts.size(), second.parts.size());
  for (std::size_t o = 0; o < first.parts.size(); ++o) {
    EXPECT_EQ(first.parts[o].count, second.parts[o].count);
  }
  RngStream other(42, 18);
  EXPECT_NE(sim.draw(other).energy, first.energy);
}

TEST(Dl3Simulate, BadParametersAreUsageErrorsNamingThem) {
  const auto make = [](double n0, double gamma, double beta, const FitSettings& s,
                       double livetime = 100.0) {
    return usage_message([&] {
      const dl3::RoiSimulator sim(two_observations(100.0, livetime), s, n0, gamma, beta);
    });
  };
  const double nan = std::nan("");
  EXPECT_EQ(make(-1e-12, 2.5, 1.0, settings()), "N0: -1e-12 must be finite and >= 0");
  EXPECT_EQ(make(1e-11, nan, 1.0, settings()), "gamma: nan must be finite");
  EXPECT_EQ(make(1e-11, 2.5, -0.5, settings()), "beta: -0.5 must be finite and >= 0");
  EXPECT_EQ(make(1e-11, 2.5, 1.0, settings(0.0)), "emin: 0 TeV must be finite and > 0");
  EXPECT_EQ(make(1e-11, 2.5, 1.0, settings(1.0, 1.0)), "emax: 1 TeV must be finite and > emin");
  EXPECT_EQ(make(1e-11, 2.5, 1.0, settings(0.1, 100.0, 0.0)),
            "theta_max: 0 deg must be in (0, 180)");
  EXPECT_EQ(make(1e-11, 2.5, 1.0, settings(), -1.0),
            "observation 1: livetime: -1 s must be finite and >= 0");
  EXPECT_EQ(make(1e-11, 2.5, 1.0, settings()), "");
}

}  // namespace
