#include "tools/phasecurve.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/gti.hpp"
#include "science/response.hpp"
#include "tools/fit.hpp"

namespace binflow::apps {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

}  // namespace

void PhasecurveTool::reset() {
  inobs_.clear();
  const science::Ephemeris ephemeris;
  t_ref_ = ephemeris.t_ref;
  f0_ = ephemeris.f0;
  f1_ = ephemeris.f1;
  f2_ = ephemeris.f2;
  phbins_ = 10;
  phbinfile_.clear();
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
  window_ = 3600.0;
}

void PhasecurveTool::declare(ParameterSet& params) {
  params.add("inobs", inobs_, "input event file (HDF5, SCIENCE.md format)");
  params.add("t_ref", t_ref_, "ephemeris reference time, MET s");
  params.add("f0", f0_, "spin frequency at t_ref, Hz, > 0");
  params.add("f1", f1_, "first derivative of the frequency, Hz/s");
  params.add("f2", f2_, "second derivative of the frequency, Hz/s^2");
  params.add("phbins", phbins_, "number of equal phase bins covering [0, 1) (unless phbinfile)",
             Range<std::int64_t>{1, 1000000});
  params.add("phbinfile", phbinfile_,
             "two-column text file of phase bins 'phmin phmax' within [0, 1]; replaces phbins");
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
  params.add("free_index", free_index_, "fit the spectral index in every phase bin");
  params.add("calc_ts", calc_ts_, "compute the test statistic of the source");
  params.add("calc_ulim", calc_ulim_, "compute the profile-likelihood upper limit");
  params.add("confidence", confidence_, "confidence level of the upper limit",
             Range<double>{0.5001, 0.999999});
  params.add("window", window_,
             "events are read in time windows of at most this many seconds (memory bound)",
             Range<double>{1.0, 1e9});
}

void PhasecurveTool::validate() {
  if (inobs_.empty()) throw UsageError("inobs: an input event file is required");
  science::validate_ephemeris(science::Ephemeris{t_ref_, f0_, f1_, f2_});
  if (emin_ >= emax_) throw UsageError(fmt::format("emin: {} is not below emax {}", emin_, emax_));
  if (std::isfinite(tmin_) && std::isfinite(tmax_) && tmin_ >= tmax_) {
    throw UsageError(fmt::format("tmin: {} is not before tmax {}", tmin_, tmax_));
  }
  if (std::isnan(ra_) != std::isnan(dec_)) throw UsageError("ra, dec: give both or neither");
}

Schema PhasecurveTool::schema() {
  return Schema{
      {"phase_min", ColumnType::f64, "", "lower edge of the phase bin"},
      {"phase_max", ColumnType::f64, "", "upper edge of the phase bin"},
      {"livetime", ColumnType::f64, "s", "total livetime times the bin width"},
      {"n_events", ColumnType::i64, "", "events in the region of interest and the phase bin"},
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

BinPlan PhasecurveTool::make_plan() const {
  if (!phbinfile_.empty()) return BinPlan::phase_from_file(phbinfile_);
  return BinPlan::phase(phbins_);
}

std::pair<double, double> PhasecurveTool::time_range(const science::Observation& obs) const {
  const science::Gti& gti = obs.gti;
  if (gti.size() == 0) throw UsageError(fmt::format("{}: /gti is empty", inobs_));
  const double t0 = std::isfinite(tmin_) ? tmin_ : gti.start.front();
  const double t1 = std::isfinite(tmax_) ? tmax_ : gti.stop.back();
  if (t0 >= t1) throw UsageError(fmt::format("tmin: {} is not before tmax {}", t0, t1));
  return {t0, t1};
}

ToolOutput PhasecurveTool::execute(RunContext& ctx) {
  agree_on_root(ctx.runtime().comm, [&] {
    (void)time_range(science::EventFileReader(inobs_).observation());
    (void)make_plan();
  });
  const science::EventFileReader reader(inobs_);
  const science::Observation& obs = reader.observation();
  const science::Response response(obs.irf, inobs_);
  const std::pair<double, double> range = time_range(obs);
  const double t0 = range.first;
  const double t1 = range.second;
  const BinPlan plan = make_plan();
  const science::Ephemeris ephemeris{t_ref_, f0_, f1_, f2_};
  science::FitSettings settings;
  settings.emin = emin_;
  settings.emax = emax_;
  settings.ra = std::isnan(ra_) ? obs.info.ra_pnt : ra_;
  settings.dec = std::isnan(dec_) ? obs.info.dec_pnt : dec_;
  settings.theta_max = theta_max_;
  settings.gamma_ref = gamma_ref_;
  settings.free_index = free_index_;
  settings.calc_ts = calc_ts_;
  settings.calc_ulim = calc_ulim_;
  settings.confidence = confidence_;
  const double total_livetime = science::livetime(obs.gti, t0, t1, obs.info.deadtime_fraction);
  ctx.log().info("{}: {} events, {} GTIs; selection {} to {} s, livetime {:.1f} s", inobs_,
                 reader.size(), obs.gti.size(), t0, t1, total_livetime);
  ctx.log().info("ephemeris t_ref {} s, f0 {} Hz, f1 {} Hz/s, f2 {} Hz/s^2; {} phase bins", t_ref_,
                 f0_, f1_, f2_, plan.size());
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg, {}-{} TeV, index {} {}", settings.ra,
                 settings.dec, settings.theta_max, settings.emin, settings.emax, settings.gamma_ref,
                 settings.free_index ? "(free)" : "(fixed)");

  const science::BinFitter fitter(response, settings);  // shared by every phase bin

  MapResult result = ctx.map("phasecurve", plan, schema(), [&](BinContext& bin) {
    const Bin& b = bin.bin();
    const auto in_bin = [&ephemeris, lo = b.lo, hi = b.hi](double t) {
      const double phase = ephemeris.phase(t);
      return phase >= lo && phase < hi;
    };
    science::RoiEvents roi = read_roi(reader, t0, t1, settings, in_bin, window_);
    // Exposure is uniform in phase (SCIENCE.md section 5).
    roi.livetime = total_livetime * (b.hi - b.lo);
    const science::FitResult f = fitter.fit(roi);
    bin.set_status(f.status);
    bin.log().info("{} events in the region of interest and the phase bin, livetime {:.1f} s",
                   f.n_events, f.livetime);
    if (f.status == "ok") {
      bin.log().info("N0 = {:.4e} +- {:.2e}, beta = {:.4f} +- {:.4f}, TS = {:.2f}, N0_ul = {:.4e}",
                     f.n0, f.n0_err, f.beta, f.beta_err, f.ts, f.n0_ul);
    } else {
      bin.log().info("status {}{}{}", f.status, f.message.empty() ? "" : ": ", f.message);
    }
    return Row{
        b.lo,       b.hi,    f.livetime,  f.n_events, f.npred,    f.n0,
        f.n0_err,   f.gamma, f.gamma_err, f.beta,     f.beta_err, f.flux,
        f.flux_err, f.ts,    f.n0_ul,     f.flux_ul,  f.lnl,      std::int64_t{f.iterations}};
  });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
