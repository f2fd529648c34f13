#pragma once
// The energy integrals of SCIENCE.md section 2: composite Simpson in u = ln E with 256
// intervals (the integrand carries the Jacobian E). The rule is part of the definition.
#include <cmath>

namespace binflow::science {

inline constexpr int simpson_intervals = 256;

/// Int_emin^emax f(E) dE by composite Simpson in ln E with `intervals` (even) intervals.
template <class F>
double simpson_log(F&& f, double emin, double emax, int intervals = simpson_intervals) {
  const double a = std::log(emin);
  const double h = (std::log(emax) - a) / intervals;
  double sum = 0.0;
  for (int k = 0; k <= intervals; ++k) {
    const double u = a + h * k;
    const double e = std::exp(u);
    const double weight = (k == 0 || k == intervals) ? 1.0 : (k % 2 == 1 ? 4.0 : 2.0);
    sum += weight * f(e) * e;
  }
  return sum * h / 3.0;
}

/// Int_emin^emax n0 (E/e0)^-gamma dE in closed form (gamma = 1 included).
inline double power_law_integral(double n0, double gamma, double emin, double emax,
                                 double e0 = 1.0) {
  if (std::abs(gamma - 1.0) < 1e-12) return n0 * e0 * std::log(emax / emin);
  const double g = 1.0 - gamma;
  return n0 * e0 / g * (std::pow(emax / e0, g) - std::pow(emin / e0, g));
}

}  // namespace binflow::science
