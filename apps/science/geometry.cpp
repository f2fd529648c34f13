#include "science/geometry.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace binflow::science {

namespace {
constexpr double deg = std::numbers::pi / 180.0;
}

double angular_distance(double ra1, double dec1, double ra2, double dec2) {
  const double dra = (ra2 - ra1) * deg;
  const double s1 = std::sin(dec1 * deg);
  const double c1 = std::cos(dec1 * deg);
  const double s2 = std::sin(dec2 * deg);
  const double c2 = std::cos(dec2 * deg);
  const double x = c2 * std::sin(dra);
  const double y = c1 * s2 - s1 * c2 * std::cos(dra);
  const double z = s1 * s2 + c1 * c2 * std::cos(dra);
  return std::atan2(std::hypot(x, y), z) / deg;
}

SkyDirection offset_direction(double ra, double dec, double offset, double bearing) {
  return OffsetFrame(ra, dec)(offset, bearing);
}

OffsetFrame::OffsetFrame(double ra, double dec)
    : ra_(ra), sin_dec_(std::sin(dec * deg)), cos_dec_(std::cos(dec * deg)) {}

SkyDirection OffsetFrame::operator()(double offset, double bearing) const {
  const double ra = ra_;
  const double s1 = sin_dec_;
  const double c1 = cos_dec_;
  const double d = offset * deg;
  const double dec2 =
      std::asin(std::clamp(s1 * std::cos(d) + c1 * std::sin(d) * std::cos(bearing), -1.0, 1.0));
  const double dra =
      std::atan2(std::sin(bearing) * std::sin(d) * c1, std::cos(d) - s1 * std::sin(dec2));
  double ra2 = std::fmod(ra + dra / deg, 360.0);
  if (ra2 < 0.0) ra2 += 360.0;
  return {ra2, dec2 / deg};
}

}  // namespace binflow::science
