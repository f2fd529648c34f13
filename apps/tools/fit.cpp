#include "tools/fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/gti.hpp"
#include "science/response.hpp"

namespace binflow::apps {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

science::Events filtered(science::Events events, const std::function<bool(double)>& keep) {
  science::Events out;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!keep(events.time[i])) continue;
    out.time.push_back(events.time[i]);
    out.energy.push_back(events.energy[i]);
    out.ra.push_back(events.ra[i]);
    out.dec.push_back(events.dec[i]);
  }
  return out;
}

}  // namespace

science::RoiEvents read_roi(const science::EventFileReader& reader, double t0, double t1,
                            const science::FitSettings& settings,
                            const std::function<bool(double)>& keep, double window) {
  const science::Observation& obs = reader.observation();
  const science::Gti& gti = obs.gti;
  const double deadtime = obs.info.deadtime_fraction;
  science::RoiEvents out;
  // Windows start at each GTI start (clipped to [t0, t1)), so they do not depend on who reads.
  for (std::size_t i = 0; i < gti.size(); ++i) {
    const double lo = std::max(t0, gti.start[i]);
    const double hi = std::min(t1, gti.stop[i]);
    for (double a = lo; a < hi;) {
      const double b = hi - a > window ? a + window : hi;
      science::Events events = reader.read_time_range(a, b);
      if (keep) events = filtered(std::move(events), keep);
      const science::RoiEvents part = science::select_roi(events, gti, a, b, deadtime, settings);
      out.energy.insert(out.energy.end(), part.energy.begin(), part.energy.end());
      out.theta.insert(out.theta.end(), part.theta.begin(), part.theta.end());
      a = b;
    }
  }
  out.livetime = science::livetime(gti, t0, t1, deadtime);
  return out;
}

void FitTool::reset() {
  inobs_.clear();
  tmin_ = nan;
  tmax_ = nan;
  emin_ = 0.1;
  emax_ = 100.0;
  ra_ = nan;
  dec_ = nan;
  theta_max_ = 0.2;
  gamma_ref_ = 2.5;
  free_index_ = false;
  calc_ts_ = true;
  calc_ulim_ = true;
  confidence_ = 0.95;
}

void FitTool::use_events(science::Observation observation, science::Events events) {
  given_observation_ = std::move(observation);
  given_events_ = std::move(events);
}

void FitTool::declare(ParameterSet& params) {
  params.add("inobs", inobs_,
             "input event file (HDF5, SCIENCE.md format); not needed when a calling tool hands "
             "over events in memory");
  params.add("tmin", tmin_, "start of the selection, MET s (default: first GTI start)");
  params.add("tmax", tmax_, "end of the selection, MET s (default: last GTI stop)");
  params.add("emin", emin_, "lower energy of the analysis, TeV", Range<double>{1e-6, 1e6});
  params.add("emax", emax_, "upper energy of the analysis, TeV", Range<double>{1e-6, 1e6});
  params.add("ra", ra_, "source right ascension, deg (default: the pointing)",
             Range<double>{0.0, 360.0});
  params.add("dec", dec_, "source declination, deg (default: the pointing)",
             Range<double>{-90.0, 90.0});
  params.add("theta_max", theta_max_, "radius of the region of interest, deg",
             Range<double>{1e-6, 10.0});
  params.add("gamma_ref", gamma_ref_, "spectral index, fixed unless free_index (start value then)",
             Range<double>{-1.0, 6.0});
  params.add("free_index", free_index_, "fit the spectral index");
  params.add("calc_ts", calc_ts_, "compute the test statistic of the source");
  params.add("calc_ulim", calc_ulim_, "compute the profile-likelihood upper limit");
  params.add("confidence", confidence_, "confidence level of the upper limit",
             Range<double>{0.5001, 0.999999});
}

void FitTool::validate() {
  if (inobs_.empty() && !given_events_) throw UsageError("inobs: an input event file is required");
  if (emin_ >= emax_) throw UsageError(fmt::format("emin: {} is not below emax {}", emin_, emax_));
  if (std::isfinite(tmin_) && std::isfinite(tmax_) && tmin_ >= tmax_) {
    throw UsageError(fmt::format("tmin: {} is not before tmax {}", tmin_, tmax_));
  }
  if (std::isnan(ra_) != std::isnan(dec_)) throw UsageError("ra, dec: give both or neither");
}

Schema FitTool::schema() {
  return Schema{
      {"time_start", ColumnType::f64, "s", "start of the selection, MET"},
      {"time_stop", ColumnType::f64, "s", "end of the selection, MET"},
      {"emin", ColumnType::f64, "TeV", "lower energy of the selection"},
      {"emax", ColumnType::f64, "TeV", "upper energy of the selection"},
      {"livetime", ColumnType::f64, "s", "GTI overlap times (1 - deadtime fraction)"},
      {"n_events", ColumnType::i64, "", "events in the region of interest"},
      {"npred", ColumnType::f64, "", "predicted counts of the best fit"},
      {"N0", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "differential flux at 1 TeV"},
      {"N0_err", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "1-sigma error of N0"},
      {"gamma", ColumnType::f64, "", "spectral index"},
      {"gamma_err", ColumnType::f64, "", "1-sigma error of gamma (NaN when fixed)"},
      {"beta", ColumnType::f64, "", "background normalisation"},
      {"beta_err", ColumnType::f64, "", "1-sigma error of beta"},
      {"flux", ColumnType::f64, "ph cm^-2 s^-1", "integral flux emin..emax"},
      {"flux_err", ColumnType::f64, "ph cm^-2 s^-1", "1-sigma error of flux"},
      {"ts", ColumnType::f64, "", "test statistic of the source"},
      {"N0_ul", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "upper limit on N0 at confidence"},
      {"flux_ul", ColumnType::f64, "ph cm^-2 s^-1", "upper limit on flux at confidence"},
      {"lnl", ColumnType::f64, "", "log-likelihood of the best fit"},
      {"iterations", ColumnType::i64, "", "fit iterations"},
  };
}

std::pair<double, double> FitTool::time_range(const science::Observation& obs,
                                              const std::string& source) const {
  const science::Gti& gti = obs.gti;
  if (gti.size() == 0) throw UsageError(fmt::format("{}: /gti is empty", source));
  const double t0 = std::isfinite(tmin_) ? tmin_ : gti.start.front();
  const double t1 = std::isfinite(tmax_) ? tmax_ : gti.stop.back();
  if (t0 >= t1) throw UsageError(fmt::format("tmin: {} is not before tmax {}", t0, t1));
  return {t0, t1};
}

science::FitSettings FitTool::fit_settings(const science::Observation& obs) const {
  science::FitSettings s;
  s.emin = emin_;
  s.emax = emax_;
  s.ra = std::isnan(ra_) ? obs.info.ra_pnt : ra_;
  s.dec = std::isnan(dec_) ? obs.info.dec_pnt : dec_;
  s.theta_max = theta_max_;
  s.gamma_ref = gamma_ref_;
  s.free_index = free_index_;
  s.calc_ts = calc_ts_;
  s.calc_ulim = calc_ulim_;
  s.confidence = confidence_;
  return s;
}

ToolOutput FitTool::execute(RunContext& ctx) {
  // In-memory input is for this run only.
  std::optional<science::Observation> given_observation = std::exchange(given_observation_, {});
  std::optional<science::Events> given_events = std::exchange(given_events_, {});
  const bool in_memory = given_events.has_value();
  const std::string source = in_memory ? std::string("events in memory") : inobs_;

  std::optional<science::EventFileReader> reader;
  if (!in_memory) {
    // Rank 0 checks the file and the time range first: bad input ends every rank with one
    // line. A nested run is alone on MPI_COMM_SELF and may be in a thread that must not
    // call MPI; its bad input fails the calling bin (BinContext::invoke).
    const auto check = [&] {
      (void)time_range(science::EventFileReader(inobs_).observation(), inobs_);
    };
    if (ctx.nested()) {
      check();
    } else {
      agree_on_root(ctx.runtime().comm, check);
    }
    reader.emplace(inobs_);
  }
  const science::Observation& obs = in_memory ? *given_observation : reader->observation();
  const std::pair<double, double> range = time_range(obs, source);
  const double t0 = range.first;
  const double t1 = range.second;
  const science::Response response(obs.irf, source);
  const science::FitSettings settings = fit_settings(obs);
  ctx.log().info("{}: {} events, {} GTIs; selection {} to {} s", source,
                 in_memory ? static_cast<std::int64_t>(given_events->size()) : reader->size(),
                 obs.gti.size(), t0, t1);
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg, {}-{} TeV, index {} {}", settings.ra,
                 settings.dec, settings.theta_max, settings.emin, settings.emax, settings.gamma_ref,
                 settings.free_index ? "(free)" : "(fixed)");

  const std::vector<double> lo{t0};
  const std::vector<double> hi{t1};
  MapResult result =
      ctx.map("fit", BinPlan::from_edges(BinKind::time, lo, hi), schema(), [&](BinContext& bin) {
        const science::RoiEvents roi =
            in_memory ? science::select_roi(*given_events, obs.gti, t0, t1,
                                            obs.info.deadtime_fraction, settings)
                      : read_roi(*reader, t0, t1, settings);
        const science::FitResult f = science::fit_bin(response, roi, settings);
        bin.set_status(f.status);
        bin.log().info("{} events in the region of interest, livetime {:.1f} s", f.n_events,
                       f.livetime);
        if (f.status == "ok") {
          bin.log().info(
              "N0 = {:.4e} +- {:.2e}, gamma = {:.3f} +- {:.3f}, beta = {:.4f} +- {:.4f}, "
              "TS = {:.2f}, N0_ul = {:.4e}, {} iterations",
              f.n0, f.n0_err, f.gamma, f.gamma_err, f.beta, f.beta_err, f.ts, f.n0_ul,
              f.iterations);
        } else {
          bin.log().info("status {}{}{}", f.status, f.message.empty() ? "" : ": ", f.message);
        }
        return Row{t0,          t1,      settings.emin, settings.emax, f.livetime,
                   f.n_events,  f.npred, f.n0,          f.n0_err,      f.gamma,
                   f.gamma_err, f.beta,  f.beta_err,    f.flux,        f.flux_err,
                   f.ts,        f.n0_ul, f.flux_ul,     f.lnl,         std::int64_t{f.iterations}};
      });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
