#pragma once
// The extended unbinned likelihood fit of one bin (SCIENCE.md sections 2-3): selection of
// the region of interest, the fit of N0, beta (and gamma when free), errors from the
// observed information, integral flux, TS and the profile-likelihood upper limit.
//
// Sums over events use fixed-size blocks whose partial sums are combined in block order,
// so every result is bit-identical for any number of OpenMP threads (the calling
// thread's OpenMP budget is used).
#include <cstdint>
#include <string>
#include <vector>

#include "science/observation.hpp"
#include "science/response.hpp"

namespace binflow::science {

/// Analysis settings (ctools vocabulary; defaults from SCIENCE.md section 4).
struct FitSettings {
  double emin = 0.1;        ///< TeV
  double emax = 100.0;      ///< TeV
  double ra = 83.6331;      ///< source position, deg
  double dec = 22.0145;     ///< deg
  double theta_max = 0.2;   ///< deg
  double gamma_ref = 2.5;   ///< index when fixed, start value when free
  bool free_index = false;
  double gamma_min = -1.0;
  double gamma_max = 6.0;
  bool calc_ts = true;
  bool calc_ulim = true;
  double confidence = 0.95;
};

/// The events of one bin inside the region of interest, and its livetime.
struct RoiEvents {
  std::vector<double> energy;  ///< TeV
  std::vector<double> theta;   ///< deg from the source
  double livetime = 0.0;       ///< s
};

/// Events with t0 <= time < t1 inside a GTI, emin <= energy <= emax and
/// theta < theta_max from (ra, dec). `events` may hold more than the bin.
RoiEvents select_roi(const Events& events, const Gti& gti, double t0, double t1,
                     double deadtime_fraction, const FitSettings& settings);

struct FitResult {
  std::string status = "ok";  ///< ok, empty (no events or no livetime), failed
  std::string message;        ///< why, when failed
  std::int64_t n_events = 0;
  double livetime = 0.0;
  double npred = 0.0;
  double n0 = 0.0, n0_err = 0.0;        ///< ph cm^-2 s^-1 TeV^-1 at 1 TeV
  double gamma = 0.0, gamma_err = 0.0;  ///< gamma_err is NaN when the index is fixed
  double beta = 0.0, beta_err = 0.0;
  double lnl = 0.0;
  double flux = 0.0, flux_err = 0.0;  ///< integral flux emin..emax, ph cm^-2 s^-1
  double ts = 0.0;
  double n0_ul = 0.0, flux_ul = 0.0;  ///< NaN when calc_ulim is off
  int iterations = 0;
};

/// Fits one bin. Never throws for a bin's content: an empty bin gives status "empty", a
/// fit that does not converge status "failed" with the message; errors are NaN when the
/// information matrix is singular.
FitResult fit_bin(const Response& response, const RoiEvents& events, const FitSettings& settings);

/// The extended log-likelihood at (n0, gamma, beta) (for tests and profile scans).
double log_likelihood(const Response& response, const RoiEvents& events,
                      const FitSettings& settings, double n0, double gamma, double beta);

}  // namespace binflow::science
