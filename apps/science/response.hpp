#pragma once
// Instrument response between grid energies, as SCIENCE.md section 1 defines it:
// aeff and bkg_rate log-log, psf_sigma linear in ln E; outside the grid zero for aeff and
// bkg_rate, the end value for psf_sigma; within 1e-12 of a grid end (relative, in ln E)
// counts as inside.
#include <string>
#include <vector>

#include "science/observation.hpp"

namespace binflow::science {

/// Immutable and thread-safe after construction.
class Response {
public:
  /// Validates the tables; UsageError naming `source` and the dataset otherwise
  /// ("obs.h5: /irf/energy is not strictly increasing (row 5)").
  Response(IrfTables tables, const std::string& source);

  [[nodiscard]] double aeff(double energy) const;
  [[nodiscard]] double psf_sigma(double energy) const;
  [[nodiscard]] double bkg_rate(double energy) const;
  [[nodiscard]] const IrfTables& tables() const { return tables_; }
  [[nodiscard]] double grid_min() const { return tables_.energy.front(); }
  [[nodiscard]] double grid_max() const { return tables_.energy.back(); }

private:
  struct Cell {
    int index;    ///< lower grid node, or -1 below / size-1 above the grid
    double frac;  ///< position between index and index + 1 in ln E
  };
  [[nodiscard]] Cell locate(double energy) const;
  [[nodiscard]] double loglog(const std::vector<double>& log_values,
                              const std::vector<double>& values, double energy) const;

  IrfTables tables_;
  std::vector<double> log_energy_;
  std::vector<double> log_aeff_;
  std::vector<double> log_bkg_;
};

/// The embedded default instrument of SCIENCE.md section 4 (40 log-spaced energies from
/// 0.03 to 100 TeV).
IrfTables default_irf();

}  // namespace binflow::science
