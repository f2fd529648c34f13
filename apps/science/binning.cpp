#include "science/binning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science {

// Designated initialisers: assigning literals to the strings one by one trips GCC 12's
// -Wrestrict false positive (GCC bug 105329).
Axis time_axis() { return Axis{.name = "time", .unit = "s", .lo_name = "start", .hi_name = "stop"}; }

Axis energy_axis() {
  return Axis{.name = "energy",
              .unit = "TeV",
              .lo_name = "emin",
              .hi_name = "emax",
              .min = 0.0,
              .min_exclusive = true};
}

Axis phase_axis() {
  return Axis{.name = "phase", .unit = "", .lo_name = "phmin", .hi_name = "phmax", .min = 0.0,
              .max = 1.0};
}

BinPlan time_linear(double tmin, double tmax, std::int64_t tbins) {
  return BinPlan::linear(time_axis(), tmin, tmax, tbins, {"tmin", "tmax", "tbins"});
}

BinPlan time_from_gtis(std::span<const double> start, std::span<const double> stop, double tmin,
                       double tmax) {
  if (!std::isfinite(tmin) || !std::isfinite(tmax) || !(tmin < tmax)) {
    // The same messages as a linear binning of [tmin, tmax).
    (void)time_linear(tmin, tmax, 1);
  }
  if (start.size() != stop.size()) {
    throw UsageError(
        fmt::format("GTIs have {} start times but {} stop times", start.size(), stop.size()));
  }
  std::vector<double> lo;
  std::vector<double> hi;
  double previous_stop = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < start.size(); ++i) {
    const std::string where = fmt::format("GTI {}", i);
    if (!std::isfinite(start[i]) || !std::isfinite(stop[i])) {
      throw UsageError(fmt::format("{} {} must be a finite number, got {}", where,
                                   std::isfinite(start[i]) ? "stop" : "start",
                                   std::isfinite(start[i]) ? stop[i] : start[i]));
    }
    // Zero-length GTIs occur in real files and are simply empty; reversed ones are corrupt.
    if (start[i] > stop[i]) {
      throw UsageError(fmt::format("{}: [{}, {}) has start > stop", where, start[i], stop[i]));
    }
    if (start[i] < previous_stop) {
      throw UsageError(fmt::format(
          "{}: GTIs overlap or are out of order (starts at {} before the previous stop {})", where,
          start[i], previous_stop));
    }
    previous_stop = stop[i];
    const double a = std::max(start[i], tmin);
    const double b = std::min(stop[i], tmax);
    if (a < b) {
      lo.push_back(a);
      hi.push_back(b);
    }
  }
  if (lo.empty()) {
    throw UsageError(fmt::format("no good time interval overlaps [tmin, tmax) = [{}, {}) ({} GTIs)",
                                 tmin, tmax, start.size()));
  }
  return BinPlan::from_edges(time_axis(), lo, hi);
}

BinPlan time_from_file(const std::string& path) { return BinPlan::from_file(time_axis(), path); }

BinPlan energy_log(double emin, double emax, std::int64_t enumbins) {
  return BinPlan::logarithmic(energy_axis(), emin, emax, enumbins, {"emin", "emax", "enumbins"});
}

BinPlan energy_from_file(const std::string& path) {
  return BinPlan::from_file(energy_axis(), path);
}

BinPlan phase_bins(std::int64_t phbins) {
  return BinPlan::linear(phase_axis(), 0.0, 1.0, phbins, {"phmin", "phmax", "phbins"});
}

BinPlan phase_from_file(const std::string& path) { return BinPlan::from_file(phase_axis(), path); }

}  // namespace binflow::science
