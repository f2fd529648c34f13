#include "tools/analysis.hpp"

#include <cmath>
#include <limits>
#include <type_traits>
#include <variant>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/gti.hpp"
#include "science/time_spec.hpp"

namespace binflow::apps {

void declare_sky_position(ParameterSet& params, double& ra, double& dec, const std::string& what) {
  params.add("ra", ra, "source right ascension, deg " + what, Range<double>{0.0, 360.0});
  params.add("dec", dec, "source declination, deg " + what, Range<double>{-90.0, 90.0});
}

void AnalysisParameters::declare(ParameterSet& params, unsigned parts,
                                 const std::string& gamma_ref_help) {
  if ((parts & input) != 0U) {
    params
        .add("inobs", inobs,
             "input: an HDF5 event file (SCIENCE.md), a DL3 FITS file, a DL3 index directory "
             "(hdu-index, obs-index) or a text list of DL3 files")
        .input_file(true);
    params.add("obs_id", obs_id, "OBS_IDs of a DL3 input to use, comma-separated (default: all)");
  }
  if ((parts & time) != 0U) {
    params.add("tmin", tmin,
               "start of the selection: MET s, 'MJD 51544.5' or an ISO 8601 date in the data's "
               "time system (default: first GTI start)");
    params.add("tmax", tmax,
               "end of the selection, in the same forms as tmin (default: last GTI stop)");
  }
  if ((parts & energy) != 0U) {
    params.add("emin", emin, "lower energy of the analysis, TeV", Range<double>{1e-6, 1e6});
    params.add("emax", emax, "upper energy of the analysis, TeV", Range<double>{1e-6, 1e6});
  }
  if ((parts & region) != 0U) {
    declare_sky_position(params, ra, dec, "(default: the pointing)");
    params.add("theta_max", theta_max, "radius of the region of interest, deg",
               Range<double>{1e-6, 10.0});
  }
  if ((parts & index) != 0U) {
    params.add("gamma_ref", gamma_ref,
               gamma_ref_help.empty() ? "spectral index, fixed unless free_index (start value then)"
                                      : gamma_ref_help,
               Range<double>{-1.0, 6.0});
  }
  if ((parts & free) != 0U) params.add("free_index", free_index, "fit the spectral index");
  if ((parts & ts) != 0U)
    params.add("calc_ts", calc_ts, "compute the test statistic of the source");
  if ((parts & ulim) != 0U) {
    params.add("calc_ulim", calc_ulim, "compute the profile-likelihood upper limit");
    params.add("confidence", confidence, "confidence level of the upper limit",
               Range<double>{0.5001, 0.999999});
  }
}

void AnalysisParameters::validate(bool inobs_required) const {
  if (inobs_required && inobs.empty()) throw UsageError("inobs: an input event file is required");
  if (emin >= emax) throw UsageError(fmt::format("emin: {} is not below emax {}", emin, emax));
  const science::TimeSpec lo = science::TimeSpec::parse(tmin, "tmin");
  const science::TimeSpec hi = science::TimeSpec::parse(tmax, "tmax");
  if (lo.given() && hi.given() && lo.comparable_with(hi) && lo.value() >= hi.value()) {
    throw UsageError(fmt::format("tmin: {} is not before tmax {}", tmin, tmax));
  }
  if (std::isnan(ra) != std::isnan(dec)) throw UsageError("ra, dec: give both or neither");
  (void)obs_ids();
}

std::vector<std::int64_t> AnalysisParameters::obs_ids() const {
  std::vector<std::int64_t> ids;
  std::size_t begin = 0;
  while (begin <= obs_id.size() && !obs_id.empty()) {
    const std::size_t end = std::min(obs_id.find(',', begin), obs_id.size());
    const std::string item = obs_id.substr(begin, end - begin);
    std::size_t used = 0;
    std::int64_t id = 0;
    try {
      id = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos) {
      throw UsageError(fmt::format("obs_id: '{}' is not an OBS_ID (comma-separated integers)", item));
    }
    ids.push_back(id);
    begin = end + 1;
  }
  return ids;
}

std::pair<double, double> AnalysisParameters::time_range(const science::Gti& gti, double mjdref,
                                                         const std::string& source) const {
  if (gti.size() == 0) throw UsageError(fmt::format("{}: /gti is empty", source));
  const science::TimeSpec lo = science::TimeSpec::parse(tmin, "tmin");
  const science::TimeSpec hi = science::TimeSpec::parse(tmax, "tmax");
  const double t0 = lo.given() ? lo.seconds(mjdref) : gti.start.front();
  const double t1 = hi.given() ? hi.seconds(mjdref) : gti.stop.back();
  if (t0 >= t1) throw UsageError(fmt::format("tmin: {} is not before tmax {}", t0, t1));
  return {t0, t1};
}

science::FitSettings AnalysisParameters::fit_settings(double default_ra, double default_dec) const {
  science::FitSettings s;
  s.emin = emin;
  s.emax = emax;
  s.ra = std::isnan(ra) ? default_ra : ra;
  s.dec = std::isnan(dec) ? default_dec : dec;
  s.theta_max = theta_max;
  s.gamma_ref = gamma_ref;
  s.free_index = free_index;
  s.calc_ts = calc_ts;
  s.calc_ulim = calc_ulim;
  s.confidence = confidence;
  return s;
}

namespace {

// The one table of fit-result columns and the science::FitResult members they hold.
struct FitColumn {
  Column column;
  std::variant<double science::FitResult::*, std::int64_t science::FitResult::*,
               int science::FitResult::*>
      member;
};

const std::vector<FitColumn>& fit_columns() {
  using R = science::FitResult;
  const std::string dnde = "ph cm^-2 s^-1 TeV^-1";
  const std::string flux = "ph cm^-2 s^-1";
  static const std::vector<FitColumn> columns = {
      {{"livetime", ColumnType::f64, "s", "GTI overlap times (1 - deadtime fraction)"},
       &R::livetime},
      {{"n_events", ColumnType::i64, "", "events in the region of interest"}, &R::n_events},
      {{"npred", ColumnType::f64, "", "predicted counts of the best fit"}, &R::npred},
      {{"N0", ColumnType::f64, dnde, "differential flux at 1 TeV"}, &R::n0},
      {{"N0_err", ColumnType::f64, dnde, "1-sigma error of N0"}, &R::n0_err},
      {{"gamma", ColumnType::f64, "", "spectral index"}, &R::gamma},
      {{"gamma_err", ColumnType::f64, "", "1-sigma error of gamma (NaN when fixed)"},
       &R::gamma_err},
      {{"beta", ColumnType::f64, "", "background normalisation"}, &R::beta},
      {{"beta_err", ColumnType::f64, "", "1-sigma error of beta"}, &R::beta_err},
      {{"flux", ColumnType::f64, flux, "integral flux emin..emax"}, &R::flux},
      {{"flux_err", ColumnType::f64, flux, "1-sigma error of flux"}, &R::flux_err},
      {{"ts", ColumnType::f64, "", "test statistic of the source"}, &R::ts},
      {{"N0_ul", ColumnType::f64, dnde, "upper limit on N0 at confidence"}, &R::n0_ul},
      {{"flux_ul", ColumnType::f64, flux, "upper limit on flux at confidence"}, &R::flux_ul},
      {{"lnl", ColumnType::f64, "", "log-likelihood of the best fit"}, &R::lnl},
      {{"iterations", ColumnType::i64, "", "fit iterations"}, &R::iterations},
  };
  return columns;
}

}  // namespace

std::vector<Column> fit_result_columns() {
  std::vector<Column> out;
  for (const FitColumn& c : fit_columns()) out.push_back(c.column);
  return out;
}

void append_fit_result(Row& row, const science::FitResult& f) {
  for (const FitColumn& c : fit_columns()) {
    std::visit(
        [&](auto member) {
          using T = std::remove_cvref_t<decltype(f.*member)>;
          if constexpr (std::is_same_v<T, int>) {
            row.emplace_back(std::int64_t{f.*member});
          } else {
            row.emplace_back(f.*member);
          }
        },
        c.member);
  }
}

science::FitResult fit_result_from_row(const Table& table, std::size_t row) {
  science::FitResult f;
  f.status = table.str(row, "status");
  f.message = table.str(row, "message");
  for (const FitColumn& c : fit_columns()) {
    std::visit(
        [&](auto member) {
          using T = std::remove_cvref_t<decltype(f.*member)>;
          if constexpr (std::is_same_v<T, double>) {
            f.*member = table.f64(row, c.column.name);
          } else {
            f.*member = static_cast<T>(table.i64(row, c.column.name));
          }
        },
        c.member);
  }
  return f;
}

void log_fit_settings(spdlog::logger& log, const science::FitSettings& s) {
  log.info("source at ({}, {}) deg, theta_max {} deg, {}-{} TeV, index {} {}", s.ra, s.dec,
           s.theta_max, s.emin, s.emax, s.gamma_ref, s.free_index ? "(free)" : "(fixed)");
}

void log_fit_result(spdlog::logger& log, const science::FitResult& f, bool index_free) {
  if (f.status == bin_status::ok) {
    const std::string gamma_error =
        index_free ? fmt::format("+- {:.3f}", f.gamma_err) : std::string("(fixed)");
    log.info(
        "N0 = {:.4e} +- {:.2e}, gamma = {:.3f} {}, beta = {:.4f} +- {:.4f}, TS = {:.2f}, "
        "N0_ul = {:.4e}, {} iterations",
        f.n0, f.n0_err, f.gamma, gamma_error, f.beta, f.beta_err, f.ts, f.n0_ul, f.iterations);
  } else {
    log.info("status {}{}{}", f.status, f.message.empty() ? "" : ": ", f.message);
  }
}

std::vector<TextColumn> fit_result_view(std::initializer_list<TextColumn> leading,
                                        bool free_index) {
  std::vector<TextColumn> view(leading);
  view.insert(view.end(), {{.name = "n_events"},
                           {.name = "N0", .error = "N0_err"},
                           {.name = "gamma", .error = "gamma_err", .fixed = !free_index},
                           {.name = "beta", .error = "beta_err"},
                           {.name = "ts"},
                           {.name = "N0_ul"},
                           {.name = "status"},
                           {.name = "message", .optional = true}});
  return view;
}

Schema schema_with_fit_result(std::initializer_list<Column> leading) {
  Schema schema(leading);
  for (Column& c : fit_result_columns()) schema.add(std::move(c));
  return schema;
}

void check_fit_memory(const MemoryLimit& memory, const science::RoiEvents& roi) {
  const std::size_t n = roi.energy.size();
  memory.check(static_cast<double>(n * science::fit_bytes_per_event),
               [n] { return fmt::format("the fit of {} events in the region of interest", n); });
}

}  // namespace binflow::apps
