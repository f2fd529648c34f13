#pragma once
// What the fitting tools (lightcurve, fit, spectrum, phasecurve) share: the event-selection
// and fit parameters with their ctools names and SCIENCE.md defaults, the columns of a fit
// result (the input itself: tools/analysis_input.hpp).
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "binflow/memory_limit.hpp"
#include "binflow/parameters.hpp"
#include "binflow/table.hpp"
#include "science/defaults.hpp"
#include "science/likelihood.hpp"

namespace binflow::apps {

/// The shared analysis parameters: declared and checked here once, for every tool that has
/// them (lightcurve, fit, spectrum, phasecurve, pull, tsdist). Each tool keeps one and
/// declares the parts it uses; the defaults are SCIENCE.md's (science/defaults.hpp).
struct AnalysisParameters {
  /// Groups of parameters, combined with |.
  enum Part : unsigned {
    input = 1U,   ///< inobs obs_id
    time = 2U,    ///< tmin tmax (empty: from the GTIs; seconds, MJD or ISO dates)
    energy = 4U,  ///< emin emax
    region = 8U,  ///< ra dec (NaN: the pointing) theta_max
    index = 16U,  ///< gamma_ref
    free = 32U,   ///< free_index
    ts = 64U,     ///< calc_ts
    ulim = 128U,  ///< calc_ulim confidence
    quantities = ts | ulim
  };
  static constexpr unsigned all = input | time | energy | region | index | free | quantities;

  std::string inobs;
  std::string obs_id;  ///< comma-separated OBS_IDs of a DL3 input (empty: all)
  std::string tmin;  ///< science::TimeSpec text: MET s, "MJD x" or an ISO 8601 date
  std::string tmax;
  double emin = science::defaults::emin;
  double emax = science::defaults::emax;
  double ra = std::numeric_limits<double>::quiet_NaN();
  double dec = std::numeric_limits<double>::quiet_NaN();
  double theta_max = science::defaults::theta_max;
  double gamma_ref = science::defaults::gamma;
  bool free_index = false;
  bool calc_ts = true;
  bool calc_ulim = true;
  double confidence = science::defaults::confidence;

  /// `gamma_ref_help` replaces the default meaning of gamma_ref when not empty.
  void declare(ParameterSet& params, unsigned parts, const std::string& gamma_ref_help = {});
  /// UsageError naming the parameter: inobs missing (when `inobs_required`), emin >= emax,
  /// tmin >= tmax, only one of ra and dec.
  void validate(bool inobs_required) const;
  /// The OBS_IDs of `obs_id` (empty: all); UsageError naming the parameter.
  [[nodiscard]] std::vector<std::int64_t> obs_ids() const;
  /// [tmin, tmax) in seconds on the input's time axis (dates resolved with its `mjdref`),
  /// with the GTI defaults; UsageError naming `source` when there are no GTIs or the range
  /// is empty.
  [[nodiscard]] std::pair<double, double> time_range(const science::Gti& gti, double mjdref,
                                                     const std::string& source) const;
  /// The fit settings; ra and dec default to (`default_ra`, `default_dec`).
  [[nodiscard]] science::FitSettings fit_settings(double default_ra, double default_dec) const;
};

/// Declares `ra` and `dec` (deg, in [0, 360] and [-90, 90]); `what` ends their help text.
void declare_sky_position(ParameterSet& params, double& ra, double& dec, const std::string& what);

/// The columns of a fit result, `livetime` to `iterations`, with units: one table of
/// column and science::FitResult member, from which the schema, the row and the typed
/// result of a nested fit are all made.
std::vector<Column> fit_result_columns();
/// Appends the cells of fit_result_columns() for `fit`.
void append_fit_result(Row& row, const science::FitResult& fit);
/// The fit result in row `row` of `table` (status and message from the row's `status` and
/// `message` columns).
science::FitResult fit_result_from_row(const Table& table, std::size_t row);
/// The run log's line of the source position, region, energies and index of `settings`.
void log_fit_settings(spdlog::logger& log, const science::FitSettings& settings);

/// Before the fit of `roi`: its per-event arrays checked against memory_limit (the bin
/// fails with MemoryLimitExceeded if they would not fit).
void check_fit_memory(const MemoryLimit& memory, const science::RoiEvents& roi);
/// Writes the fit result into a bin's log block: the values (the index as fixed unless
/// `index_free`), or the status and why.
void log_fit_result(spdlog::logger& log, const science::FitResult& fit, bool index_free);
/// The console's columns of a per-bin fit result after `leading` (the bin's edges): events,
/// N0, gamma (`fixed` unless `free_index`), beta, TS, the limit, status and message.
std::vector<TextColumn> fit_result_view(std::initializer_list<TextColumn> leading, bool free_index);
/// A schema made of `leading` columns followed by fit_result_columns().
Schema schema_with_fit_result(std::initializer_list<Column> leading);

}  // namespace binflow::apps
