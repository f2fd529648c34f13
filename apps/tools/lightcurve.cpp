#include "tools/lightcurve.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/response.hpp"

namespace binflow::apps {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double seconds_per_day = 86400.0;

}  // namespace

void LightcurveTool::reset() {
  inobs_.clear();
  tbinalg_ = "LIN";
  tmin_ = nan;
  tmax_ = nan;
  tbins_ = 20;
  tbinfile_.clear();
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

void LightcurveTool::declare(ParameterSet& params) {
  params.add("inobs", inobs_, "input event file (HDF5, SCIENCE.md format)");
  params.add_choice("tbinalg", tbinalg_, {"LIN", "GTI", "FILE"},
                    "time binning: tbins equal bins, one bin per GTI, or bins from tbinfile");
  params.add("tmin", tmin_, "start of the light curve, MET s (default: first GTI start)");
  params.add("tmax", tmax_, "end of the light curve, MET s (default: last GTI stop)");
  params.add("tbins", tbins_, "number of time bins for tbinalg=LIN",
             Range<std::int64_t>{1, 100000000});
  params.add("tbinfile", tbinfile_, "two-column text file of bin starts and stops (tbinalg=FILE)");
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
  params.add("free_index", free_index_, "fit the spectral index in every bin");
  params.add("calc_ts", calc_ts_, "compute the test statistic of the source");
  params.add("calc_ulim", calc_ulim_, "compute the profile-likelihood upper limit");
  params.add("confidence", confidence_, "confidence level of the upper limit",
             Range<double>{0.5001, 0.999999});
}

void LightcurveTool::validate() {
  if (inobs_.empty()) throw UsageError("inobs: an input event file is required");
  if (emin_ >= emax_) throw UsageError(fmt::format("emin: {} is not below emax {}", emin_, emax_));
  if (std::isfinite(tmin_) && std::isfinite(tmax_) && tmin_ >= tmax_) {
    throw UsageError(fmt::format("tmin: {} is not before tmax {}", tmin_, tmax_));
  }
  if (tbinalg_ == "FILE" && tbinfile_.empty())
    throw UsageError("tbinfile: required with tbinalg=FILE");
  if (std::isnan(ra_) != std::isnan(dec_)) throw UsageError("ra, dec: give both or neither");
}

Schema LightcurveTool::schema() {
  return Schema{
      {"time_start", ColumnType::f64, "s", "bin start, MET"},
      {"time_stop", ColumnType::f64, "s", "bin stop, MET"},
      {"mjd_start", ColumnType::f64, "d", "bin start, MJD"},
      {"mjd_stop", ColumnType::f64, "d", "bin stop, MJD"},
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

BinPlan LightcurveTool::make_plan(const science::Observation& obs) const {
  const auto& gti = obs.gti;
  if (gti.size() == 0) throw UsageError(fmt::format("{}: /gti is empty", inobs_));
  const double tmin = std::isfinite(tmin_) ? tmin_ : gti.start.front();
  const double tmax = std::isfinite(tmax_) ? tmax_ : gti.stop.back();
  if (tmin >= tmax) throw UsageError(fmt::format("tmin: {} is not before tmax {}", tmin, tmax));
  if (tbinalg_ == "GTI") return BinPlan::time_from_gtis(gti.start, gti.stop, tmin, tmax);
  if (tbinalg_ == "FILE") return BinPlan::time_from_file(tbinfile_);
  return BinPlan::time_linear(tmin, tmax, tbins_);
}

science::FitSettings LightcurveTool::fit_settings(const science::Observation& obs) const {
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

Row LightcurveTool::fit_time_bin(BinContext& bin, const science::EventFileReader& reader,
                                 const science::BinFitter& fitter) const {
  const science::FitSettings& settings = fitter.settings();
  const Bin& b = bin.bin();
  const science::Observation& obs = reader.observation();
  const science::Events events = reader.read_time_range(b.lo, b.hi);
  const science::RoiEvents roi =
      science::select_roi(events, obs.gti, b.lo, b.hi, obs.info.deadtime_fraction, settings);
  const science::FitResult f = fitter.fit(roi);
  bin.set_status(f.status);
  bin.log().info("{} events read, {} in the region of interest, livetime {:.1f} s", events.size(),
                 f.n_events, f.livetime);
  if (f.status == "ok") {
    bin.log().info(
        "N0 = {:.4e} +- {:.2e}, gamma = {:.3f}, beta = {:.4f} +- {:.4f}, TS = {:.2f}, "
        "N0_ul = {:.4e}, {} iterations",
        f.n0, f.n0_err, f.gamma, f.beta, f.beta_err, f.ts, f.n0_ul, f.iterations);
  } else {
    bin.log().info("status {}{}{}", f.status, f.message.empty() ? "" : ": ", f.message);
  }
  const double mjdref = obs.info.mjdref;
  return Row{b.lo,
             b.hi,
             mjdref + b.lo / seconds_per_day,
             mjdref + b.hi / seconds_per_day,
             f.livetime,
             f.n_events,
             f.npred,
             f.n0,
             f.n0_err,
             f.gamma,
             f.gamma_err,
             f.beta,
             f.beta_err,
             f.flux,
             f.flux_err,
             f.ts,
             f.n0_ul,
             f.flux_ul,
             f.lnl,
             std::int64_t{f.iterations}};
}

ToolOutput LightcurveTool::execute(RunContext& ctx) {
  // Rank 0 checks the file and the binning first, so that bad input ends every rank
  // with one message before any work is spread.
  agree_on_root(ctx.runtime().comm,
                [&] { (void)make_plan(science::EventFileReader(inobs_).observation()); });
  const science::EventFileReader reader(inobs_);
  const science::Observation& obs = reader.observation();
  const science::Response response(obs.irf, inobs_);
  const science::FitSettings settings = fit_settings(obs);
  const BinPlan plan = make_plan(obs);
  ctx.log().info("{}: {} events, {} GTIs; {} time bins ({}) from {} to {} s", inobs_, reader.size(),
                 obs.gti.size(), plan.size(), tbinalg_, plan.bins().front().lo,
                 plan.bins().back().hi);
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg, {}-{} TeV, index {} {}", settings.ra,
                 settings.dec, settings.theta_max, settings.emin, settings.emax, settings.gamma_ref,
                 settings.free_index ? "(free)" : "(fixed)");
  // The response integrals and tables are set up once and shared by every bin.
  const science::BinFitter fitter(response, settings);
  MapResult result = ctx.map("lightcurve", plan, schema(), [&](BinContext& bin) {
    return fit_time_bin(bin, reader, fitter);
  });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
