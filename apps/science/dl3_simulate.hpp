#pragma once
// Monte Carlo trials of the multi-observation likelihood (SCIENCE.md sections 2, 5 and 7):
// Poisson realisations of the model inside the region of interest (theta < theta_max from
// the source, emin <= E <= emax) of each DL3 observation, in the form the fit takes
// (RoiEvents with one part per observation), for the pull and TS-distribution tools.
//
// The model is the likelihood's (docs/science.md, "DL3 input", "For the tools"): per
// observation o of livetime T_o, source counts T_o N0 Int (E/1 TeV)^-gamma aeff_o Fpsf_o dE
// and background counts T_o beta pi theta_max^2 Int b_o dE, both integrals by the
// likelihood's Simpson rule (integrate.hpp), so that the mean counts of a trial equal the
// likelihood's Npred to rounding.
//
// Events are drawn from the exact densities (no tabulation error): energies by exact
// inversion of a piecewise exponential envelope and rejection against it (the background's
// envelope is its density, accepted always), source theta by rejection in the disc against
// psf_peak_density(E), background theta uniform in the disc. See docs/science.md,
// "Monte Carlo trials". Every number comes from the RngStream given to draw(), in a fixed
// order, so a trial is the same bits for any number of ranks and threads.
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "binflow/rng.hpp"
#include "science/dl3_response.hpp"
#include "science/likelihood.hpp"

namespace binflow::science::dl3 {

/// One observation of a trial: its response at the source and its livetime, s.
struct TrialObservation {
  ObservationResponse response;
  double livetime = 0.0;
};

namespace detail {
struct TrialTables;
}

/// The Poisson realisations of one model over a set of observations. The constructor
/// tabulates per observation the expected counts and the energy samplers; afterwards the
/// object is immutable and thread-safe (each thread draws with its own RngStream).
/// Not collective.
class RoiSimulator {
public:
  /// `model`: n0 (ph cm^-2 s^-1 TeV^-1 at 1 TeV) >= 0, gamma finite, beta >= 0; from
  /// `settings` only emin, emax and theta_max are used. Livetimes finite and >= 0 (an
  /// observation of livetime 0 gives an empty part). No observations: every draw is empty.
  /// UsageError naming the parameter (or the observation) for a bad value.
  RoiSimulator(std::vector<TrialObservation> observations, const FitSettings& settings, double n0,
               double gamma, double beta);

  [[nodiscard]] std::size_t observations() const;
  /// Expected source and background counts of observation `o` inside the ROI.
  [[nodiscard]] std::pair<double, double> expected(std::size_t o) const;

  /// One realisation. Per observation in order: the Poisson source count, the Poisson
  /// background count, then the source events (energy, theta), then the background events.
  /// One part per observation (observation index o, livetime T_o, even when it has no
  /// events); the result's livetime is the sum.
  [[nodiscard]] RoiEvents draw(RngStream& rng) const;

private:
  std::shared_ptr<const detail::TrialTables> tables_;
};

}  // namespace binflow::science::dl3
