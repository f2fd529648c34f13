#include "tools/fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/error.hpp"
#include "science/binning.hpp"
#include "science/gti.hpp"
#include "science/response.hpp"
#include "science/roi.hpp"
#include "tools/analysis_input.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

void FitTool::apply(Request request) {
  analysis_ = std::move(request.analysis);
  given_observation_ = std::move(request.observation);
  given_events_ = std::move(request.events);
}

FitTool::Result FitTool::result_of(const ToolOutput& out) {
  if (out.table.size() != 1 || out.stats.bins.size() != 1) {
    throw InternalError(fmt::format("nested fit returned {} rows, expected 1", out.table.size()));
  }
  return Result{fit_result_from_row(out.table, 0), out.stats.bins.front().threads};
}

void FitTool::declare(ParameterSet& params) { analysis_.declare(params, AnalysisParameters::all); }

// In-memory events (use_events) stand in for inobs.
void FitTool::validate() { analysis_.validate(!given_events_); }

Schema FitTool::schema() {
  return schema_with_fit_result({
      {"time_start", ColumnType::f64, "s", "start of the selection, MET"},
      {"time_stop", ColumnType::f64, "s", "end of the selection, MET"},
      {"emin", ColumnType::f64, "TeV", "lower energy of the selection"},
      {"emax", ColumnType::f64, "TeV", "upper energy of the selection"},
  });
}

void FitTool::write_fits(const std::string& path, const ToolOutput& out,
                         const RunProvenance& provenance) const {
  write_plain_table(path, out, provenance, "FIT",
                    observed_);
}

std::vector<TextColumn> FitTool::console_view() const {
  return {{.name = "time_start"},
          {.name = "time_stop"},
          {.name = "emin"},
          {.name = "emax"},
          {.name = "n_events"},
          {.name = "N0", .error = "N0_err"},
          {.name = "gamma", .error = "gamma_err", .fixed = !analysis_.free_index},
          {.name = "beta", .error = "beta_err"},
          {.name = "flux", .error = "flux_err"},
          {.name = "ts"},
          {.name = "N0_ul"},
          {.name = "flux_ul"},
          {.name = "status"},
          {.name = "message", .optional = true}};
}

ToolOutput FitTool::execute(RunContext& ctx) {
  // In-memory input is for this run only.
  std::optional<science::Observation> observation = std::exchange(given_observation_, {});
  std::optional<science::Events> events = std::exchange(given_events_, {});
  if (observation && events) {
    const science::Observation& obs = *observation;
    const science::Events& in_memory = *events;
    const std::string source = "events in memory";
    const auto selection = analysis_.time_range(obs.gti, obs.info.mjdref, source);
    const science::FitSettings settings = analysis_.fit_settings(obs.info.ra_pnt, obs.info.dec_pnt);
    observed_ = {obs.info.mjdref, obs.info.timesys};
    ctx.log().info("{}: {} events, {} GTIs; selection {} to {} s", source, in_memory.size(),
                   obs.gti.size(), selection.first, selection.second);
    log_fit_settings(ctx.log(), settings);
    const science::BinFitter fitter(science::Response(obs.irf, source), settings);
    return fit(ctx, selection, fitter,
               [&](double t0, double t1, const science::FitSettings& s, const MemoryLimit&) {
                 return science::select_roi(in_memory, obs.gti, t0, t1, obs.info.deadtime_fraction,
                                            s);
               });
  }
  // Rank 0 checks the input and the time range first: bad input ends every rank with one
  // line (a nested run is alone on MPI_COMM_SELF: its bad input fails the calling bin).
  const AnalysisInput input(ctx.runtime().comm, analysis_);
  observed_ = {input.mjdref(), input.timesys()};
  input.log_summary(ctx.log());
  log_fit_settings(ctx.log(), input.settings());
  return fit(ctx, {input.t0(), input.t1()}, input.fitter(input.settings()),
             [&](double t0, double t1, const science::FitSettings& s, const MemoryLimit& memory) {
               return input.read_roi(t0, t1, s, memory);
             });
}

ToolOutput FitTool::fit(RunContext& ctx, std::pair<double, double> selection,
                        const science::BinFitter& fitter, const RoiSource& roi_of) const {
  const auto [t0, t1] = selection;
  const science::FitSettings& settings = fitter.settings();
  const std::vector<double> lo{t0};
  const std::vector<double> hi{t1};
  const Schema columns = schema();
  MapResult result = ctx.map(
      "fit", BinPlan::from_edges(science::time_axis(), lo, hi), columns, [&](BinContext& bin) {
        const science::RoiEvents roi = roi_of(t0, t1, settings, bin.memory_limit());
        check_fit_memory(bin.memory_limit(), roi);
        const science::FitResult f = fitter.fit(roi, bin.budget().threads());
        bin.set_status(f.status);
        bin.log().info("{} events in the region of interest, livetime {:.1f} s", f.n_events,
                       f.livetime);
        log_fit_result(bin.log(), f, settings.free_index);
        Row row{t0, t1, settings.emin, settings.emax};
        append_fit_result(row, f);
        return row;
      });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
