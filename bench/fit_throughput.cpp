// Throughput of the likelihood fit on one core: ROI events fitted per second, TS and upper
// limit included, with the index fixed and free. The data are a four-hour Crab observation
// from the default instrument (8 runs of 1800 s, deadtime 0.05: 13680 s of livetime) in
// 100 bins of 136.8 s, about 600 ROI events each (SCIENCE.md: 3800 source and 3800
// background events in 30 minutes). Prints medians of several repetitions, per second of
// wall time and per second of the thread's CPU time (which other processes on the machine
// disturb less).
//   build/bin/bench_fit_throughput [repetitions]
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numbers>
#include <vector>

#include <fmt/format.h>

#include "binflow/rng.hpp"
#include "science/integrate.hpp"
#include "science/likelihood.hpp"
#include "science/response.hpp"

namespace {

using namespace binflow::science;

constexpr int bins = 100;
constexpr double bin_livetime = 8 * 1800.0 * 0.95 / bins;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double draw_power_law(binflow::RngStream& rng, double index, double lo, double hi) {
  const double g = 1.0 - index;
  return std::pow(std::pow(lo, g) + rng.uniform() * (std::pow(hi, g) - std::pow(lo, g)), 1.0 / g);
}

// A Poisson realisation of the Crab in the ROI: energies by rejection against aeff
// (bounded by 4e9 cm^2) and against the background's E^-2.7 envelope (bounded by 0.75).
RoiEvents simulate_bin(const Response& r, const FitSettings& s, std::uint64_t index) {
  binflow::RngStream rng(2024, index);
  RoiEvents ev;
  ev.livetime = bin_livetime;
  const double n0 = 3.5e-11;
  const double gamma = 2.5;
  const double src =
      bin_livetime * n0 *
      simpson_log([&](double e) { return std::pow(e, -gamma) * r.aeff(e); }, s.emin, s.emax);
  for (std::uint64_t k = rng.poisson(src); k > 0; --k) {
    double e = 0.0;
    do {
      e = draw_power_law(rng, gamma, s.emin, s.emax);
    } while (rng.uniform() * 4e9 > r.aeff(e));
    const double theta = r.psf_sigma(e) * std::sqrt(-2.0 * std::log(rng.uniform()));
    if (theta < s.theta_max) {
      ev.energy.push_back(e);
      ev.theta.push_back(theta);
    }
  }
  const double bkg = bin_livetime * std::numbers::pi * s.theta_max * s.theta_max *
                     simpson_log([&](double e) { return r.bkg_rate(e); }, s.emin, s.emax);
  for (std::uint64_t k = rng.poisson(bkg); k > 0; --k) {
    double e = 0.0;
    do {
      e = draw_power_law(rng, 2.7, s.emin, s.emax);
    } while (rng.uniform() * 0.75 > r.bkg_rate(e) * std::pow(e, 2.7));
    ev.energy.push_back(e);
    ev.theta.push_back(s.theta_max * std::sqrt(rng.uniform()));
  }
  return ev;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Seconds {
  double wall;
  double cpu;
};

// Time to fit all bins; `per_bin_tables` rebuilds the tables for every bin (fit_bin).
Seconds time_fits(const Response& response, const FitSettings& s,
                  const std::vector<RoiEvents>& data, bool per_bin_tables) {
  const BinFitter fitter(response, s);
  const double cpu_start = thread_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  int failed = 0;
  for (const RoiEvents& ev : data) {
    const FitResult r = per_bin_tables ? fit_bin(response, ev, s, 1) : fitter.fit(ev, 1);
    failed += r.status != "ok" || (s.calc_ulim && !std::isfinite(r.n0_ul));
  }
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
  const double cpu = thread_cpu_seconds() - cpu_start;
  if (failed > 0) {
    fmt::print(stderr, "{} fits failed\n", failed);
    std::exit(1);
  }
  return {wall.count(), cpu};
}

}  // namespace

int main(int argc, char** argv) {
  const int repetitions = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  omp_set_num_threads(1);  // per core
  const Response response(default_irf(), "default");
  const FitSettings fixed;
  std::vector<RoiEvents> data;
  data.reserve(bins);
  double events = 0.0;
  for (int b = 0; b < bins; ++b) {
    data.push_back(simulate_bin(response, fixed, static_cast<std::uint64_t>(b)));
    events += static_cast<double>(data.back().energy.size());
  }
  fmt::print("{} bins of {:.1f} s livetime, {:.0f} ROI events per bin on average\n", bins,
             bin_livetime, events / bins);
  fmt::print("ROI events fitted per second on one core, median of {}:\n", repetitions);
  fmt::print("{:<50} {:>8} {:>8}\n", "", "wall", "cpu");
  FitSettings free_index = fixed;
  free_index.free_index = true;
  FitSettings bare = fixed;
  bare.calc_ts = bare.calc_ulim = false;
  FitSettings bare_free = free_index;
  bare_free.calc_ts = bare_free.calc_ulim = false;
  struct Case {
    const char* name;
    const FitSettings* settings;
    bool per_bin_tables;
  };
  const Case cases[] = {{"fixed index, TS and UL (BinFitter)", &fixed, false},
                        {"free index, TS and UL (BinFitter)", &free_index, false},
                        {"fixed index, fit only", &bare, false},
                        {"free index, fit only", &bare_free, false},
                        {"fixed index, TS and UL, fit_bin (tables per bin)", &fixed, true},
                        {"free index, TS and UL, fit_bin (tables per bin)", &free_index, true}};
  for (const Case& c : cases) {
    std::vector<double> wall;
    std::vector<double> cpu;
    for (int k = 0; k < repetitions; ++k) {
      const Seconds t = time_fits(response, *c.settings, data, c.per_bin_tables);
      wall.push_back(events / t.wall);
      cpu.push_back(events / t.cpu);
    }
    fmt::print("{:<50} {:8.3g} {:8.3g}\n", c.name, median(wall), median(cpu));
  }
  return 0;
}
