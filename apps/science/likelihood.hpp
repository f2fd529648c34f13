#pragma once
// The extended unbinned likelihood fit of one bin (SCIENCE.md sections 2-3): selection of
// the region of interest, the fit of N0, beta (and gamma when free), errors from the
// observed information, integral flux, TS and the profile-likelihood upper limit.
//
// Sums over events use fixed-size blocks whose partial sums are combined in block order
// (binflow/parallel.hpp), so every result is bit-identical for any number of OpenMP
// threads. Every call takes its thread count (`threads` >= 1, normally the bin's budget);
// none reads omp_get_max_threads().
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "binflow/table.hpp"
#include "science/defaults.hpp"
#include "science/observation.hpp"
#include "science/response.hpp"

namespace binflow::science {

/// Analysis settings (ctools vocabulary; defaults from SCIENCE.md section 4).
struct FitSettings {
  double emin = defaults::emin;            ///< TeV
  double emax = defaults::emax;            ///< TeV
  double ra = defaults::ra;                ///< source position, deg
  double dec = defaults::dec;              ///< deg
  double theta_max = defaults::theta_max;  ///< deg
  double gamma_ref = defaults::gamma;      ///< index when fixed, start value when free
  bool free_index = false;
  double gamma_min = defaults::gamma_min;
  double gamma_max = defaults::gamma_max;
  bool calc_ts = true;
  bool calc_ulim = true;
  double confidence = defaults::confidence;
};

/// Bytes a fit holds per event of the region of interest beyond the RoiEvents (its
/// per-event columns: ln E, ln aeff - theta^2/2 sigma^2, the PSF norm, b_i / B, a_i / A).
inline constexpr std::size_t fit_bytes_per_event = 5 * sizeof(double);

/// The events of one bin inside the region of interest, and its livetime.
struct RoiEvents {
  /// Bytes of one event held in memory (energy and theta).
  static constexpr std::size_t row_bytes = 2 * sizeof(double);
  std::vector<double> energy;  ///< TeV
  std::vector<double> theta;   ///< deg from the source
  double livetime = 0.0;       ///< s (with parts: the sum of theirs)

  /// A run of consecutive events from one observation of a fitter built on several
  /// (DL3): the observation's index in the fitter, its events and its livetime in the bin.
  struct Part {
    std::size_t observation = 0;
    std::size_t count = 0;
    double livetime = 0.0;  ///< s
  };
  /// Empty: every event is observation 0's, with `livetime`. A part may hold no events (its
  /// livetime still counts in the exposure).
  std::vector<Part> parts;

  /// Appends `more`'s events and livetime as one part of observation `observation`.
  void append_part(std::size_t observation, const RoiEvents& more);
};

struct FitResult {
  /// bin_status::ok, empty (no events or no livetime) or failed (binflow/table.hpp)
  std::string status = std::string(bin_status::ok);
  std::string message;  ///< why, when failed
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
/// information matrix is singular. Builds a BinFitter per call: tools fitting many bins
/// should build one BinFitter and call fit() on it. Sums run on `threads` OpenMP threads.
FitResult fit_bin(const Response& response, const RoiEvents& events, const FitSettings& settings,
                  int threads);

/// The extended log-likelihood at (n0, gamma, beta) (for tests and profile scans).
double log_likelihood(const Response& response, const RoiEvents& events,
                      const FitSettings& settings, double n0, double gamma, double beta,
                      int threads);

/// lnL with its analytic gradient and Hessian, parameters in the order (n0, gamma, beta).
struct LikelihoodDerivatives {
  double lnl = 0.0;
  std::array<double, 3> gradient{};
  std::array<std::array<double, 3>, 3> hessian{};
};

namespace detail {
struct FitTables;
}
namespace dl3 {
class ObservationResponse;
}

/// The fit of many bins with one response (or one per observation) and one set of
/// settings. The constructor
/// tabulates what every bin shares (the response on the Simpson nodes of the energy
/// integrals, per-cell interpolation coefficients); afterwards the object is immutable and
/// thread-safe: bins in different threads may share one, each call running its sums on the
/// `threads` >= 1 OpenMP threads it is given (normally the calling bin's budget).
/// Not collective.
/// Events where the response is zero (aeff = bkg_rate = 0, outside the IRF grid) carry
/// no information and are left out of the sums, as GammaLib does (see docs/science.md).
class BinFitter {
public:
  /// UsageError naming the parameter when a setting is out of range.
  BinFitter(const Response& response, const FitSettings& settings);
  /// Several DL3 observations (SCIENCE.md section 7), each with its response at the source
  /// (settings.ra, settings.dec): the bins' RoiEvents say in `parts` which events and how
  /// much livetime each observation holds; one N0, gamma and beta describe them all (the
  /// model of a bin is the livetime-weighted sum of the observations' models). RoiEvents
  /// without parts belong to observation 0.
  BinFitter(const std::vector<dl3::ObservationResponse>& responses, const FitSettings& settings);

  /// See fit_bin().
  [[nodiscard]] FitResult fit(const RoiEvents& events, int threads) const;
  [[nodiscard]] double log_likelihood(const RoiEvents& events, double n0, double gamma, double beta,
                                      int threads) const;
  [[nodiscard]] LikelihoodDerivatives derivatives(const RoiEvents& events, double n0, double gamma,
                                                  double beta, int threads) const;
  /// max over beta >= 0 of lnL at fixed (n0, gamma): the profile behind the upper limit.
  [[nodiscard]] double profile_log_likelihood(const RoiEvents& events, double n0, double gamma,
                                              int threads) const;
  [[nodiscard]] const FitSettings& settings() const;
  /// How many observations the fitter describes (1 for a Response).
  [[nodiscard]] std::size_t observations() const;

private:
  std::shared_ptr<const detail::FitTables> tables_;
};

/// Quantile of the chi^2 distribution with 1 degree of freedom at probability p in [0, 1)
/// (2.705543 at p = 0.9, the 95% one-sided upper limit).
double chi2_quantile_1dof(double p);

}  // namespace binflow::science
