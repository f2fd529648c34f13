#include "science/roi.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "science/geometry.hpp"

namespace binflow::science {
namespace {

constexpr double deg = std::numbers::pi / 180.0;

// Difference of two right ascensions, deg, wrapped into [-180, 180] (nearbyint is a library
// call on baseline x86-64, so only for the differences that need it).
double wrapped_ra_difference(double ra, double ra0) {
  const double dra = ra - ra0;
  return std::abs(dra) <= 180.0 ? dra : dra - 360.0 * std::nearbyint(dra / 360.0);
}

// sin y for |y| <= small_offset: the terms through y^9 (the next is below 3e-21 y).
double sin_small(double y) {
  const double y2 = y * y;
  return y * (1.0 - y2 / 6.0 * (1.0 - y2 / 20.0 * (1.0 - y2 / 42.0 * (1.0 - y2 / 72.0))));
}

// asin z for z <= sin(small_offset / sqrt 2): sum c_k z^(2k+1), c_k = (2k)! / (4^k k!^2 (2k+1)),
// through k = 6 (the next term is below 1e-21 z).
double asin_small(double z) {
  const double z2 = z * z;
  constexpr double c1 = 1.0 / 6.0;
  constexpr double c2 = 3.0 / 40.0;
  constexpr double c3 = 5.0 / 112.0;
  constexpr double c4 = 35.0 / 1152.0;
  constexpr double c5 = 63.0 / 2816.0;
  constexpr double c6 = 231.0 / 13312.0;
  return z + z * z2 * (c1 + z2 * (c2 + z2 * (c3 + z2 * (c4 + z2 * (c5 + z2 * c6)))));
}

// The RA differences a point within theta_max of a source at dec_src can have; every RA
// difference near a pole, where the bound does not hold.
class RaWindow {
public:
  RaWindow(double dec_src, double theta_max) {
    if (std::abs(dec_src) + theta_max < 89.0) {
      const double s = std::sin(theta_max * deg) / std::cos(dec_src * deg);
      half_width_ = std::asin(std::min(s, 1.0)) / deg + 1e-9;
    }
  }
  /// `dra` in deg, wrapped into [-180, 180].
  [[nodiscard]] bool may_hold(double dra) const { return std::abs(dra) < half_width_; }

private:
  double half_width_ = 361.0;
};

}  // namespace

SourceDistance::SourceDistance(double ra, double dec)
    : ra_(ra), dec_(dec), sin_dec_(std::sin(dec * deg)), cos_dec_(std::cos(dec * deg)) {}

double SourceDistance::operator()(double ra, double dec) const {
  const double a = wrapped_ra_difference(ra, ra_) * deg;
  const double d = (dec - dec_) * deg;
  if (!(std::abs(a) <= small_offset && std::abs(d) <= small_offset)) {
    return angular_distance(ra_, dec_, ra, dec);
  }
  // hav theta = hav(d) + cos dec0 cos dec hav(a), cos dec = cos dec0 cos d - sin dec0 sin d.
  const double half_d = sin_small(0.5 * d);
  const double half_a = sin_small(0.5 * a);
  const double cos_dec = cos_dec_ * (1.0 - 2.0 * half_d * half_d) - sin_dec_ * sin_small(d);
  const double h = half_d * half_d + cos_dec_ * cos_dec * half_a * half_a;
  return 2.0 * asin_small(std::sqrt(h)) / deg;
}

RoiEvents select_roi(const EventsView& events, const Gti& gti, double t0, double t1,
                     double deadtime_fraction, const FitSettings& settings,
                     const TimeFilter& keep) {
  RoiEvents roi;
  roi.livetime = livetime(gti, t0, t1, deadtime_fraction);
  // Cheap rejections before the distance, each with a margin far above its rounding, so
  // that exactly the events the distance keeps pass them: |dec - dec_src| bounds the
  // distance from below, and so does the RA difference (a point within theta of the source
  // differs from it in RA by at most asin(sin theta / cos dec_src) while theta < 90 - |dec_src|).
  const double dec_window = settings.theta_max + 1e-9;
  const RaWindow ra_window(settings.dec, settings.theta_max);
  const SourceDistance distance(settings.ra, settings.dec);
  const auto select = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const double e = events.energy[i];
      if (!(e >= settings.emin && e <= settings.emax)) continue;
      if (std::abs(events.dec[i] - settings.dec) >= dec_window) continue;
      if (!ra_window.may_hold(wrapped_ra_difference(events.ra[i], settings.ra))) continue;
      if (keep && !keep(events.time[i])) continue;
      const double theta = distance(events.ra[i], events.dec[i]);
      if (!(theta < settings.theta_max)) continue;
      roi.energy.push_back(e);
      roi.theta.push_back(theta);
    }
  };
  // The bin's part of each GTI, [max(t0, start), min(t1, stop)), in time order: the events'
  // rows there by binary search, so no event is tested against the GTIs.
  const auto time = events.time;
  auto from = time.begin();
  const auto g0 = std::upper_bound(gti.stop.begin(), gti.stop.end(), t0) - gti.stop.begin();
  for (auto g = static_cast<std::size_t>(g0); g < gti.size() && gti.start[g] < t1; ++g) {
    const double lo = std::max(t0, gti.start[g]);
    const double hi = std::min(t1, gti.stop[g]);
    if (!(lo < hi)) continue;
    const auto first = std::lower_bound(from, time.end(), lo);
    const auto last = std::lower_bound(first, time.end(), hi);
    select(static_cast<std::size_t>(first - time.begin()),
           static_cast<std::size_t>(last - time.begin()));
    from = last;
  }
  return roi;
}

}  // namespace binflow::science
