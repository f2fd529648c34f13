// The filtered simulation of nested analyses (Simulator::events with a RoiFilter): it must
// keep, bit for bit and in order, every event of the unfiltered simulation that the filter's
// region and energy range hold, keep nothing the unfiltered one lacks, and draw the same
// counts, whatever the profile, the filter's centre and cuts, and the thread count.
#include "science/simulate.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "binflow/rng.hpp"
#include "science/event_file.hpp"
#include "science/geometry.hpp"
#include "science/observation.hpp"
#include "science/response.hpp"

namespace {

using binflow::science::Events;
using binflow::science::Observation;
using binflow::science::Response;
using binflow::science::RoiFilter;
using binflow::science::Simulator;
using binflow::science::SourceModel;
using binflow::science::TimeProfile;

bool same_bits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

bool same_event(const Events& a, std::size_t i, const Events& b, std::size_t j) {
  return same_bits(a.time[i], b.time[j]) && same_bits(a.energy[i], b.energy[j]) &&
         same_bits(a.ra[i], b.ra[j]) && same_bits(a.dec[i], b.dec[j]);
}

bool inside(const Events& ev, std::size_t i, const RoiFilter& f) {
  return ev.energy[i] >= f.emin && ev.energy[i] <= f.emax &&
         binflow::science::angular_distance(f.ra, f.dec, ev.ra[i], ev.dec[i]) < f.theta_max;
}

// `kept` is a subsequence of `all` (same bits, same order) that holds every event of `all`
// inside `f`, and each of its events is in the energy range and within `reach` of the
// source (theta_max, the filter's margin and its centre's distance from the source).
void expect_filtered(const Events& all, const Events& kept, const RoiFilter& f,
                     const SourceModel& source, double reach, const std::string& where) {
  SCOPED_TRACE(where);
  std::size_t j = 0;
  std::size_t holds = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const bool in = inside(all, i, f);
    holds += in ? 1 : 0;
    if (j < kept.size() && same_event(all, i, kept, j)) {
      ++j;
    } else {
      ASSERT_FALSE(in) << "event " << i << " inside the filter was dropped";
    }
  }
  ASSERT_EQ(j, kept.size()) << "kept events that are not those of the unfiltered slice, in order";
  EXPECT_GE(kept.size(), holds);
  for (std::size_t i = 0; i < kept.size(); ++i) {
    EXPECT_TRUE(kept.energy[i] >= f.emin && kept.energy[i] <= f.emax) << i;
    EXPECT_LT(binflow::science::angular_distance(source.ra, source.dec, kept.ra[i], kept.dec[i]),
              reach)
        << i;
  }
}

struct Case {
  std::string name;
  TimeProfile profile;
  RoiFilter filter;
  SourceModel model;
};

std::vector<Case> cases() {
  const RoiFilter analysis;  // the pull's defaults: 0.1-100 TeV within 0.2 deg of the source
  RoiFilter narrow = analysis;
  narrow.emin = 0.5;  // inside a grid cell on both sides
  narrow.emax = 7.0;
  narrow.theta_max = 0.05;
  RoiFilter aside = analysis;  // a centre 0.15 deg from the source: the limit widens
  aside.dec += 0.15;
  RoiFilter everything = analysis;  // below and above the grid, beyond the background cap
  everything.emin = 0.001;
  everything.emax = 1000.0;
  everything.theta_max = 5.0;
  SourceModel polar;  // near the pole, where ra is ill-conditioned
  polar.dec = 89.95;
  polar.theta_sim = 0.4;
  RoiFilter polar_filter = analysis;
  polar_filter.dec = polar.dec;
  return {{"constant", TimeProfile::constant(), analysis, SourceModel{}},
          {"flare (thinning: the time drawn first)", TimeProfile::flare(5.0, 900.0, 200.0),
           analysis, SourceModel{}},
          {"narrow cuts", TimeProfile::constant(), narrow, SourceModel{}},
          {"centre off the source", TimeProfile::constant(), aside, SourceModel{}},
          {"a filter holding everything", TimeProfile::constant(), everything, SourceModel{}},
          {"near the pole", TimeProfile::constant(), polar_filter, polar}};
}

TEST(SimulateFiltered, KeepsExactlyTheUnfilteredEventsTheFilterCanSelect) {
  const Observation obs = binflow::science::default_observation(1800.0);
  const Response response(obs.irf, "default");
  for (const Case& c : cases()) {
    const Simulator sim(obs, response, c.model, c.profile, 60.0);
    const double margin = c.filter.theta_max * 1e-9 + 1e-9 + 1e-12;
    const double reach =
        c.filter.theta_max + margin +
        binflow::science::angular_distance(c.model.ra, c.model.dec, c.filter.ra, c.filter.dec);
    std::size_t all_events = 0;
    std::size_t kept_events = 0;
    for (std::int64_t k = 0; k < sim.slices(); k += 7) {
      const Events all = sim.events(11, k);
      const Events kept = sim.events(11, k, c.filter);
      expect_filtered(all, kept, c.filter, c.model, reach, fmt::format("{}, slice {}", c.name, k));
      all_events += all.size();
      kept_events += kept.size();
    }
    if (c.name == "a filter holding everything") {
      EXPECT_EQ(kept_events, all_events) << "nothing to drop";
    } else {
      EXPECT_LT(kept_events, all_events / 2) << c.name << ": the filter drops most events";
    }
  }
}

TEST(SimulateFiltered, WholeSimulationDrawsTheSameCountsOnAnyThreads) {
  const Observation obs = binflow::science::default_observation(3600.0, 100.0);  // 2 GTIs
  const Response response(obs.irf, "default");
  const Simulator sim(obs, response, SourceModel{}, TimeProfile::constant(), 60.0);
  const RoiFilter filter;
  const auto all = binflow::science::simulate_events(sim, 5, 1);
  const auto one = binflow::science::simulate_events(sim, 5, 1, {}, filter);
  const auto two = binflow::science::simulate_events(sim, 5, 2, {}, filter);
  EXPECT_EQ(all.drawn, static_cast<std::int64_t>(all.events.size()));
  EXPECT_EQ(one.drawn, all.drawn) << "drawn counts every event, kept or not";
  EXPECT_EQ(two.drawn, all.drawn);
  expect_filtered(all.events, one.events, filter, SourceModel{}, 0.2 + 1e-8, "1 thread");
  ASSERT_EQ(one.events.size(), two.events.size());
  for (std::size_t i = 0; i < one.events.size(); ++i) {
    ASSERT_TRUE(same_event(one.events, i, two.events, i)) << i;
  }
  std::int64_t reported = -1;
  (void)binflow::science::simulate_events(
      sim, 5, 1, [&](std::int64_t n) { reported = n; }, filter);
  EXPECT_EQ(reported, all.drawn) << "the memory check sees the events drawn";
}

TEST(LogLogSpectrum, ReachRejectsOnlySamplesOutsideTheRange) {
  const Response response(binflow::science::default_irf(), "default");
  const auto& irf = response.tables();
  std::vector<double> falling;
  std::vector<double> dead_top;  // zero density in the top cells: sample()'s walk down
  for (std::size_t i = 0; i < irf.energy.size(); ++i) {
    falling.push_back(std::log(irf.aeff[i]) - 1.5 * std::log(irf.energy[i]));
    dead_top.push_back(i + 5 < irf.energy.size() ? falling.back()
                                                 : -std::numeric_limits<double>::infinity());
  }
  const double grid_5 = irf.energy[5];
  for (const auto& density : {falling, dead_top}) {
    const binflow::science::detail::LogLogSpectrum spectrum(irf.energy, density);
    for (const auto& [emin, emax] : {std::pair{0.1, 100.0}, std::pair{grid_5, 3.0},
                                     std::pair{0.5, 0.6}, std::pair{0.01, 1000.0}}) {
      const auto reach = spectrum.reach(emin, emax);
      binflow::RngStream rng(3, 4);
      int rejected = 0;
      // Random uniforms and the extremes (1 - 2^-53 rounds y up to the total).
      std::vector<double> uniforms{std::nextafter(1.0, 0.0), 0x1p-53, 0.5};
      for (int i = 0; i < 200000; ++i) uniforms.push_back(rng.uniform());
      for (const double u : uniforms) {
        if (spectrum.may_reach(reach, u)) continue;
        ++rejected;
        const double e = spectrum.sample(u);
        ASSERT_TRUE(e < emin || e > emax)
            << "u " << u << " gives " << e << " inside [" << emin << ", " << emax << "]";
      }
      if (emin > irf.energy[1]) {
        EXPECT_GT(rejected, 1000) << emin << " " << emax;
      }
      if (emin < irf.energy.front() && emax > irf.energy.back()) {
        EXPECT_EQ(rejected, 0);
      }
    }
  }
}

}  // namespace
