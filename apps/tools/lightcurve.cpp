#include "tools/lightcurve.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/error.hpp"
#include "science/binning.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

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

BinPlan LightcurveTool::make_plan(const AnalysisInput& input) const {
  const science::Gti& gti = input.gti();
  if (tbinalg_ == "GTI") return science::time_from_gtis(gti.start, gti.stop, input.t0(), input.t1());
  if (tbinalg_ == "FILE") return science::time_from_file(tbinfile_);
  return science::time_linear(input.t0(), input.t1(), tbins_);
}

Row LightcurveTool::fit_time_bin(BinContext& bin, const AnalysisInput& input,
                                 const science::BinFitter& fitter) const {
  const Bin& b = bin.bin();
  const science::RoiEvents roi = input.read_roi(b.lo, b.hi, fitter.settings(), bin.memory_limit());
  check_fit_memory(bin.memory_limit(), roi);
  const science::FitResult f = fitter.fit(roi, bin.budget().threads());
  bin.set_status(f.status);
  bin.log().info("{} events in the region of interest{}, livetime {:.1f} s", f.n_events,
                 roi.parts.empty() ? "" : fmt::format(", observations: {}", roi.parts.size()),
                 f.livetime);
  log_fit_result(bin.log(), f, fitter.settings().free_index);
  Row row{b.lo, b.hi, input.mjd(b.lo), input.mjd(b.hi)};
  append_fit_result(row, f);
  return row;
}

void LightcurveTool::write_fits(const std::string& path, const ToolOutput& out,
                                const RunProvenance& provenance) const {
  write_flux_curve(path, out, provenance,
                   FluxCurveSpec{"LIGHTCURVE", "mjd_start", "mjd_stop", "time_min", "time_max",
                                 analysis_.emin, analysis_.emax, analysis_.confidence,
                                 observed_});
}

std::vector<TextColumn> LightcurveTool::console_view() const {
  return fit_result_view({{.name = "bin"},
                          {.name = "mjd_start", .distinct = true},
                          {.name = "mjd_stop", .distinct = true}},
                         analysis_.free_index);
}

ToolOutput LightcurveTool::execute(RunContext& ctx) {
  // Rank 0 checks the input and the binning first, so that bad input ends every rank
  // with one message before any work is spread.
  const AnalysisInput input(ctx.runtime().comm, analysis_,
                            [&](const AnalysisInput& probe) { (void)make_plan(probe); });
  const science::FitSettings& settings = input.settings();
  const BinPlan plan = make_plan(input);
  observed_ = {input.mjdref(), input.timesys()};
  input.log_summary(ctx.log());
  ctx.log().info("{} time bins ({}) from {} to {} s", plan.size(), tbinalg_,
                 plan.bins().front().lo, plan.bins().back().hi);
  log_fit_settings(ctx.log(), settings);
  // The response integrals and tables are set up once and shared by every bin.
  const science::BinFitter fitter = input.fitter(settings);
  MapResult result = ctx.map("lightcurve", plan, schema(),
                             [&](BinContext& bin) { return fit_time_bin(bin, input, fitter); },
                             {.concurrent_bins = input.reads_concurrently()});
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
