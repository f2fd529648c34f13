#include "science/phase.hpp"

#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science {

Ephemeris::Cycles Ephemeris::cycles(double t) const {
  const long double dt = static_cast<long double>(t) - static_cast<long double>(t_ref);
  const long double c =
      dt * (static_cast<long double>(f0) +
            dt * (static_cast<long double>(f1) / 2.0L + dt * static_cast<long double>(f2) / 6.0L));
  const long double whole = std::floor(c);
  double phase = static_cast<double>(c - whole);
  std::int64_t turns = static_cast<std::int64_t>(whole);
  if (phase >= 1.0) {  // c - whole just below 1 rounds up to 1.0 in double
    phase = 0.0;
    ++turns;
  }
  return {turns, phase};
}

double Ephemeris::frequency(double t) const {
  const double dt = t - t_ref;
  return f0 + dt * (f1 + dt * f2 / 2.0);
}

void validate_ephemeris(const Ephemeris& ephemeris) {
  for (const auto& [name, value] : {std::pair{"t_ref", ephemeris.t_ref},
                                    {"f0", ephemeris.f0},
                                    {"f1", ephemeris.f1},
                                    {"f2", ephemeris.f2}}) {
    if (!std::isfinite(value))
      throw UsageError(fmt::format("{}: {} is not a finite number", name, value));
  }
  if (!(ephemeris.f0 > 0.0))
    throw UsageError(
        fmt::format("f0: {} Hz is not > 0 (the spin frequency at t_ref)", ephemeris.f0));
}

}  // namespace binflow::science
