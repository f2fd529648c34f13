#include "tools/phasecurve.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/error.hpp"
#include "science/binning.hpp"
#include "science/gti.hpp"
#include "science/response.hpp"
#include "tools/fit.hpp"
#include "tools/analysis_input.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

void PhasecurveTool::declare(ParameterSet& params) {
  analysis_.declare(params, AnalysisParameters::input);
  params.add("t_ref", t_ref_, "ephemeris reference time, MET s");
  params.add("f0", f0_, "spin frequency at t_ref, Hz, > 0");
  params.add("f1", f1_, "first derivative of the frequency, Hz/s");
  params.add("f2", f2_, "second derivative of the frequency, Hz/s^2");
  params.add("phbins", phbins_, "number of equal phase bins covering [0, 1) (unless phbinfile)",
             Range<std::int64_t>{1, 1000000});
  params
      .add("phbinfile", phbinfile_,
           "two-column text file of phase bins 'phmin phmax' within [0, 1]; replaces phbins")
      .input_file();
  analysis_.declare(params, AnalysisParameters::all & ~AnalysisParameters::input);
  params.add("window", window_,
             "events are read in time windows of at most this many seconds (memory bound)",
             Range<double>{1.0, 1e9});
}

void PhasecurveTool::validate() {
  analysis_.validate(true);
  science::validate_ephemeris(science::Ephemeris{t_ref_, f0_, f1_, f2_});
}

Schema PhasecurveTool::schema() {
  Schema schema{
      {"phase_min", ColumnType::f64, "", "lower edge of the phase bin"},
      {"phase_max", ColumnType::f64, "", "upper edge of the phase bin"},
  };
  for (Column c : fit_result_columns()) {
    if (c.name == "livetime") c.description = "total livetime times the bin width";
    schema.add(std::move(c));
  }
  return schema;
}

BinPlan PhasecurveTool::make_plan() const {
  if (!phbinfile_.empty()) return science::phase_from_file(phbinfile_);
  return science::phase_bins(phbins_);
}

void PhasecurveTool::write_fits(const std::string& path, const ToolOutput& out,
                                const RunProvenance& provenance) const {
  write_flux_curve(path, out, provenance,
                   FluxCurveSpec{"PHASECURVE",
                                 "phase_min",
                                 "phase_max",
                                 "phase_min",
                                 "phase_max",
                                 analysis_.emin,
                                 analysis_.emax,
                                 analysis_.confidence,
                                 {}});
}

std::vector<TextColumn> PhasecurveTool::console_view() const {
  return fit_result_view({{.name = "bin"},
                          {.name = "phase_min", .distinct = true},
                          {.name = "phase_max", .distinct = true}},
                         analysis_.free_index);
}

ToolOutput PhasecurveTool::execute(RunContext& ctx) {
  const AnalysisInput input(ctx.runtime().comm, analysis_,
                            [&](const AnalysisInput&) { (void)make_plan(); });
  const double t0 = input.t0();
  const double t1 = input.t1();
  const BinPlan plan = make_plan();
  const science::Ephemeris ephemeris{t_ref_, f0_, f1_, f2_};
  const science::FitSettings& settings = input.settings();
  const double total_livetime = input.livetime(t0, t1);
  input.log_summary(ctx.log());
  ctx.log().info("livetime {:.1f} s; ephemeris t_ref {} s, f0 {} Hz, f1 {} Hz/s, f2 {} Hz/s^2; "
                 "{} phase bins",
                 total_livetime, t_ref_, f0_, f1_, f2_, plan.size());
  log_fit_settings(ctx.log(), settings);

  const science::BinFitter fitter = input.fitter(settings);  // shared by every phase bin

  MapResult result = ctx.map("phasecurve", plan, schema(), [&](BinContext& bin) {
    const Bin& b = bin.bin();
    const auto in_bin = [&ephemeris, lo = b.lo, hi = b.hi](double t) {
      const double phase = ephemeris.phase(t);
      return phase >= lo && phase < hi;
    };
    science::RoiEvents roi = input.read_roi(t0, t1, settings, bin.memory_limit(), in_bin, window_);
    // Exposure is uniform in phase (SCIENCE.md section 5): every observation's share too.
    const double phase_share = b.hi - b.lo;
    roi.livetime = total_livetime * phase_share;
    for (science::RoiEvents::Part& part : roi.parts) part.livetime *= phase_share;
    check_fit_memory(bin.memory_limit(), roi);
    const science::FitResult f = fitter.fit(roi, bin.budget().threads());
    bin.set_status(f.status);
    bin.log().info("{} events in the region of interest and the phase bin, livetime {:.1f} s",
                   f.n_events, f.livetime);
    log_fit_result(bin.log(), f, settings.free_index);
    Row row{b.lo, b.hi};
    append_fit_result(row, f);
    return row;
  });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
