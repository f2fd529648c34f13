#pragma once
// Exact spherical geometry in degrees (no flat-sky shortcuts).
namespace binflow::science {

/// Great-circle distance between two directions, deg (Vincenty's formula: accurate at
/// all separations, including the tiny ones of a PSF).
double angular_distance(double ra1, double dec1, double ra2, double dec2);

struct SkyDirection {
  double ra;   ///< deg in [0, 360)
  double dec;  ///< deg
};

/// The direction at angular distance `offset` (deg) from (ra, dec) along position angle
/// `bearing` (radians, from north through east).
SkyDirection offset_direction(double ra, double dec, double offset, double bearing);

/// offset_direction() around one fixed centre, whose sine and cosine of dec are computed
/// once instead of at every call (the same bits). Immutable, thread-safe.
class OffsetFrame {
public:
  OffsetFrame(double ra, double dec);
  [[nodiscard]] SkyDirection operator()(double offset, double bearing) const;

private:
  double ra_;
  double sin_dec_;
  double cos_dec_;
};

}  // namespace binflow::science
