#include "tools/lightcurve.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/error.hpp"
#include "science/binning.hpp"
#include "science/response.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

namespace {

constexpr double seconds_per_day = 86400.0;

}  // namespace

void LightcurveTool::declare(ParameterSet& params) {
  analysis_.declare(params, AnalysisParameters::input);
  params.add_choice("tbinalg", tbinalg_, {"LIN", "GTI", "FILE"},
                    "time binning: tbins equal bins, one bin per GTI, or bins from tbinfile");
  analysis_.declare(params, AnalysisParameters::time);
  params.add("tbins", tbins_, "number of time bins for tbinalg=LIN",
             Range<std::int64_t>{1, 100000000});
  params.add("tbinfile", tbinfile_, "two-column text file of bin starts and stops (tbinalg=FILE)")
      .input_file();
  analysis_.declare(
      params, AnalysisParameters::all & ~(AnalysisParameters::input | AnalysisParameters::time));
}

void LightcurveTool::validate() {
  analysis_.validate(true);
  if (tbinalg_ == "FILE" && tbinfile_.empty()) {
    throw UsageError("tbinfile: required with tbinalg=FILE");
  }
}

Schema LightcurveTool::schema() {
  return schema_with_fit_result({
      {"time_start", ColumnType::f64, "s", "bin start, MET"},
      {"time_stop", ColumnType::f64, "s", "bin stop, MET"},
      {"mjd_start", ColumnType::f64, "d", "bin start, MJD"},
      {"mjd_stop", ColumnType::f64, "d", "bin stop, MJD"},
  });
}

BinPlan LightcurveTool::make_plan(const science::Observation& obs) const {
  const auto [tmin, tmax] = analysis_.time_range(obs, analysis_.inobs);
  if (tbinalg_ == "GTI") return science::time_from_gtis(obs.gti.start, obs.gti.stop, tmin, tmax);
  if (tbinalg_ == "FILE") return science::time_from_file(tbinfile_);
  return science::time_linear(tmin, tmax, tbins_);
}

Row LightcurveTool::fit_time_bin(BinContext& bin, const science::EventFileReader& reader,
                                 const science::BinFitter& fitter) const {
  const science::FitSettings& settings = fitter.settings();
  const Bin& b = bin.bin();
  const science::Observation& obs = reader.observation();
  const science::Events events = reader.read_time_range(b.lo, b.hi);
  const science::RoiEvents roi =
      science::select_roi(events, obs.gti, b.lo, b.hi, obs.info.deadtime_fraction, settings);
  const science::FitResult f = fitter.fit(roi, bin.budget().threads());
  bin.set_status(f.status);
  bin.log().info("{} events read, {} in the region of interest, livetime {:.1f} s", events.size(),
                 f.n_events, f.livetime);
  log_fit_result(bin.log(), f, settings.free_index);
  const double mjdref = obs.info.mjdref;
  Row row{b.lo, b.hi, mjdref + b.lo / seconds_per_day, mjdref + b.hi / seconds_per_day};
  append_fit_result(row, f);
  return row;
}

void LightcurveTool::write_fits(const std::string& path, const ToolOutput& out,
                                const RunProvenance& provenance) const {
  write_flux_curve(path, out, provenance,
                   FluxCurveSpec{"LIGHTCURVE", "mjd_start", "mjd_stop", "time_min", "time_max",
                                 analysis_.emin, analysis_.emax, analysis_.confidence,
                                 FitsTimeReference{observed_.mjdref, observed_.timesys}});
}

std::vector<TextColumn> LightcurveTool::console_view() const {
  return fit_result_view({{.name = "bin"},
                          {.name = "mjd_start", .distinct = true},
                          {.name = "mjd_stop", .distinct = true}},
                         analysis_.free_index);
}

ToolOutput LightcurveTool::execute(RunContext& ctx) {
  // Rank 0 checks the file and the binning first, so that bad input ends every rank
  // with one message before any work is spread.
  const AnalysisInput input(ctx.runtime().comm, analysis_,
                            [&](const science::Observation& obs) { (void)make_plan(obs); });
  const science::EventFileReader& reader = input.reader();
  const science::Observation& obs = input.observation();
  const science::Response& response = input.response();
  const science::FitSettings settings = analysis_.fit_settings(obs);
  const BinPlan plan = make_plan(obs);
  observed_ = obs.info;
  ctx.log().info("{}: {} events, {} GTIs; {} time bins ({}) from {} to {} s", analysis_.inobs,
                 reader.size(), obs.gti.size(), plan.size(), tbinalg_, plan.bins().front().lo,
                 plan.bins().back().hi);
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg, {}-{} TeV, index {} {}", settings.ra,
                 settings.dec, settings.theta_max, settings.emin, settings.emax, settings.gamma_ref,
                 settings.free_index ? "(free)" : "(fixed)");
  // The response integrals and tables are set up once and shared by every bin.
  const science::BinFitter fitter(response, settings);
  MapResult result = ctx.map("lightcurve", plan, schema(),
                             [&](BinContext& bin) { return fit_time_bin(bin, reader, fitter); });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
