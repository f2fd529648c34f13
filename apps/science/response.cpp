#include "science/response.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science {

namespace {

constexpr double grid_tolerance = 1e-12;  // SCIENCE.md: rounding at a grid end counts as inside

void require(bool ok, const std::string& source, std::string_view dataset, std::size_t row,
             std::string_view what) {
  if (!ok) throw UsageError(fmt::format("{}: /irf/{} {} (row {})", source, dataset, what, row));
}

}  // namespace

Response::Response(IrfTables tables, const std::string& source) : tables_(std::move(tables)) {
  const std::size_t n = tables_.energy.size();
  if (n < 2) throw UsageError(fmt::format("{}: /irf/energy needs at least 2 grid points", source));
  for (const auto* column : {&tables_.aeff, &tables_.psf_sigma, &tables_.bkg_rate}) {
    if (column->size() != n) {
      throw UsageError(fmt::format("{}: /irf datasets differ in length ({} energies, {} values)",
                                   source, n, column->size()));
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    require(std::isfinite(tables_.energy[i]) && tables_.energy[i] > 0.0, source, "energy", i,
            "must be finite and > 0");
    require(i == 0 || tables_.energy[i] > tables_.energy[i - 1], source, "energy", i,
            "is not strictly increasing");
    require(std::isfinite(tables_.aeff[i]) && tables_.aeff[i] >= 0.0, source, "aeff", i,
            "must be finite and >= 0");
    require(std::isfinite(tables_.psf_sigma[i]) && tables_.psf_sigma[i] > 0.0, source, "psf_sigma",
            i, "must be finite and > 0");
    require(std::isfinite(tables_.bkg_rate[i]) && tables_.bkg_rate[i] >= 0.0, source, "bkg_rate", i,
            "must be finite and >= 0");
  }
  const auto logs = [](const std::vector<double>& v) {
    std::vector<double> out(v.size());
    std::transform(v.begin(), v.end(), out.begin(), [](double x) {
      return x > 0.0 ? std::log(x) : -std::numeric_limits<double>::infinity();
    });
    return out;
  };
  log_energy_ = logs(tables_.energy);
  log_aeff_ = logs(tables_.aeff);
  log_bkg_ = logs(tables_.bkg_rate);
}

Response::Cell Response::locate(double energy) const {
  const std::size_t n = log_energy_.size();
  const double u = std::log(energy);
  const double tolerance = grid_tolerance * std::max(1.0, std::abs(log_energy_.front()));
  if (u < log_energy_.front() - tolerance) return {-1, 0.0};
  const double top_tolerance = grid_tolerance * std::max(1.0, std::abs(log_energy_.back()));
  if (u > log_energy_.back() + top_tolerance) return {static_cast<int>(n) - 1, 0.0};
  if (u <= log_energy_.front()) return {0, 0.0};
  if (u >= log_energy_.back()) return {static_cast<int>(n) - 2, 1.0};
  const auto it = std::upper_bound(log_energy_.begin(), log_energy_.end(), u);
  const auto i = static_cast<std::size_t>(it - log_energy_.begin()) - 1;
  return {static_cast<int>(i), (u - log_energy_[i]) / (log_energy_[i + 1] - log_energy_[i])};
}

double Response::loglog(const std::vector<double>& log_values, const std::vector<double>& values,
                        double energy) const {
  const Cell c = locate(energy);
  const int last = static_cast<int>(values.size()) - 1;
  if (c.index < 0 || c.index >= last) return 0.0;  // outside the grid
  const auto i = static_cast<std::size_t>(c.index);
  // A zero on either side gives zero (the log-log line does not exist).
  if (values[i] <= 0.0 || values[i + 1] <= 0.0) return 0.0;
  if (c.frac == 0.0) return values[i];
  if (c.frac == 1.0) return values[i + 1];
  return std::exp(log_values[i] + c.frac * (log_values[i + 1] - log_values[i]));
}

double Response::aeff(double energy) const { return loglog(log_aeff_, tables_.aeff, energy); }

double Response::bkg_rate(double energy) const {
  return loglog(log_bkg_, tables_.bkg_rate, energy);
}

double Response::psf_sigma(double energy) const {
  const Cell c = locate(energy);
  const auto& psf = tables_.psf_sigma;
  if (c.index < 0) return psf.front();
  if (c.index >= static_cast<int>(psf.size()) - 1) return psf.back();
  const auto i = static_cast<std::size_t>(c.index);
  return psf[i] + c.frac * (psf[i + 1] - psf[i]);
}

IrfTables default_irf() {
  IrfTables t;
  constexpr int n = 40;
  const double lo = std::log(0.03);
  const double hi = std::log(100.0);
  for (int k = 0; k < n; ++k) {
    const double e = k == n - 1 ? 100.0 : (k == 0 ? 0.03 : std::exp(lo + (hi - lo) * k / (n - 1)));
    t.energy.push_back(e);
    t.aeff.push_back(4e9 * (1.0 - std::exp(-e / 0.1)));
    t.psf_sigma.push_back(0.03 + 0.07 * std::exp(-std::log10(e / 0.1) / 1.028));
    t.bkg_rate.push_back(0.75 * std::pow(e, -2.7) * (1.0 - std::exp(-e / 0.1)));
  }
  return t;
}

}  // namespace binflow::science
