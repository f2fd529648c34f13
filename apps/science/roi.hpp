#pragma once
// The region of interest of SCIENCE.md section 2: which events of a time range a fit sees,
// and their distances from the source. This is the loop every event of a bin goes through,
// so it rejects with comparisons first and computes a distance only near the source.
#include <functional>

#include "science/gti.hpp"
#include "science/likelihood.hpp"
#include "science/observation.hpp"

namespace binflow::science {

/// Great-circle distances from one fixed source, deg. For points within small_offset (rad)
/// of it in both coordinates, the haversine formula with the sines of the half differences
/// and the arcsine as Taylor polynomials (no library call; within a few ulp of the exact
/// value, the tests check 1e-13 against angular_distance(), whose own rounding is larger
/// there); angular_distance() elsewhere.
class SourceDistance {
public:
  SourceDistance(double ra, double dec);
  [[nodiscard]] double operator()(double ra, double dec) const;

  /// 0.05 rad (2.9 deg): where the polynomials' first omitted terms stay below 1e-19.
  static constexpr double small_offset = 0.05;

private:
  double ra_;
  double dec_;
  double sin_dec_;
  double cos_dec_;
};

/// Keeps an event by its time (a phase selection); empty keeps all.
using TimeFilter = std::function<bool(double)>;

/// Events with t0 <= time < t1 inside a GTI, emin <= energy <= emax and theta < theta_max
/// from (ra, dec), and kept by `keep`, in time order. `events` may hold more than the bin;
/// its times are sorted ascending, as in the event file (each GTI's part of the bin is
/// found by binary search).
RoiEvents select_roi(const EventsView& events, const Gti& gti, double t0, double t1,
                     double deadtime_fraction, const FitSettings& settings,
                     const TimeFilter& keep = {});

inline RoiEvents select_roi(const Events& events, const Gti& gti, double t0, double t1,
                            double deadtime_fraction, const FitSettings& settings) {
  return select_roi(view_of(events), gti, t0, t1, deadtime_fraction, settings);
}

}  // namespace binflow::science
