// Statistical test of the fitter on the real simulator: pulls (fit - true) / error over a
// few hundred simulated 10-minute observations of the bright default source. The trials
// are seeded, so the test is deterministic; the bounds are SCIENCE.md section 6's
// (|mean| <= 0.1 and width in [0.9, 1.1] for >= 1000 trials) widened by the statistical
// error of the trial count: bound(n) = 0.1 * sqrt(1000 / n).
#include <cmath>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "science/event_file.hpp"
#include "science/likelihood.hpp"
#include "science/roi.hpp"
#include "science/simulate.hpp"

namespace binflow::science {
namespace {

struct Moments {
  double mean = 0.0;
  double width = 0.0;
};

Moments moments(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0.0;
  for (const double x : v) ss += (x - mean) * (x - mean);
  return {mean, std::sqrt(ss / (n - 1.0))};
}

TEST(FitterPulls, BrightSourceOnSimulatedObservations) {
  constexpr int trials = 300;
  const double bound = 0.1 * std::sqrt(1000.0 / trials);
  const Observation obs = default_observation(600.0);
  const Response response(obs.irf, "default instrument");
  const SourceModel truth;  // the Crab-like default: N0 3.5e-11, gamma 2.5, beta 1
  FitSettings settings;
  settings.calc_ulim = false;
  std::vector<double> n0_pull;
  std::vector<double> beta_pull;
  for (int k = 0; k < trials; ++k) {
    const Events events =
        simulate_events(obs, response, truth, TimeProfile::constant(), 1000 + k, 60.0, 1);
    const RoiEvents roi = select_roi(events, obs.gti, obs.gti.start.front(), obs.gti.stop.back(),
                                     obs.info.deadtime_fraction, settings);
    const FitResult fit = fit_bin(response, roi, settings, 1);
    ASSERT_EQ(fit.status, "ok") << "trial " << k << ": " << fit.message;
    n0_pull.push_back((fit.n0 - truth.n0) / fit.n0_err);
    beta_pull.push_back((fit.beta - truth.beta) / fit.beta_err);
  }
  for (const auto& [name, pulls] : {std::pair{"N0", n0_pull}, std::pair{"beta", beta_pull}}) {
    const Moments m = moments(pulls);
    EXPECT_LE(std::abs(m.mean), bound) << name << " pull mean " << m.mean;
    EXPECT_GE(m.width, 1.0 - bound) << name << " pull width " << m.width;
    EXPECT_LE(m.width, 1.0 + bound) << name << " pull width " << m.width;
    std::printf("%s pulls over %d trials: mean %.3f, width %.3f (bound %.3f)\n", name, trials,
                m.mean, m.width, bound);
  }
}

}  // namespace
}  // namespace binflow::science
