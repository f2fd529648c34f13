#pragma once
// Pulsar phase from an ephemeris (SCIENCE.md section 5): phase = frac(f0 dt + f1 dt^2/2 +
// f2 dt^3/6), dt = t - t_ref. Shared by the phase-curve tool and the pulsar time profile of
// the simulator, so that both use the same bits.
#include <cstdint>

namespace binflow::science {

/// Spin ephemeris: reference time (MET s), frequency (Hz) and its first two derivatives
/// (Hz/s, Hz/s^2) at t_ref. Value type, thread-safe.
struct Ephemeris {
  double t_ref = 0.0;
  double f0 = 0.0297;
  double f1 = 0.0;
  double f2 = 0.0;

  /// Rotations since t_ref, split into a whole part and the phase in [0, 1): the sum is
  /// taken in long double (64-bit significand on x86-64), so the phase keeps ~1e-9 of a
  /// turn after 1e9 turns (a 30 Hz pulsar a year from t_ref) where double keeps ~1e-7.
  struct Cycles {
    std::int64_t turns = 0;  ///< floor of the rotation count (negative before t_ref)
    double phase = 0.0;      ///< in [0, 1)
  };
  [[nodiscard]] Cycles cycles(double t) const;
  /// frac(f0 dt + f1 dt^2/2 + f2 dt^3/6) in [0, 1); negative dt wraps the same way
  /// (frac(x) = x - floor(x)).
  [[nodiscard]] double phase(double t) const { return cycles(t).phase; }
  /// Spin frequency at t, f0 + f1 dt + f2 dt^2/2, Hz.
  [[nodiscard]] double frequency(double t) const;
};

/// UsageError naming the parameter unless t_ref, f0, f1, f2 are finite and f0 > 0.
void validate_ephemeris(const Ephemeris& ephemeris);

}  // namespace binflow::science
