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
                    FitsTimeReference{observed_.mjdref, observed_.timesys});
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
    observed_ = obs.info;
    return fit(ctx, obs, "events in memory", static_cast<std::int64_t>(in_memory.size()),
               [&](double t0, double t1, const science::FitSettings& settings) {
                 return science::select_roi(in_memory, obs.gti, t0, t1, obs.info.deadtime_fraction,
                                            settings);
               });
  }
  // Rank 0 checks the file and the time range first: bad input ends every rank with one
  // line (a nested run is alone on MPI_COMM_SELF: its bad input fails the calling bin).
  ctx.runtime().comm.agree_on_root([&] {
    (void)analysis_.time_range(science::EventFileReader(analysis_.inobs).observation(),
                               analysis_.inobs);
  });
  const science::EventFileReader reader(analysis_.inobs);
  observed_ = reader.observation().info;
  return fit(ctx, reader.observation(), analysis_.inobs, reader.size(),
             [&](double t0, double t1, const science::FitSettings& settings) {
               return read_roi(reader, t0, t1, settings);
             });
}

ToolOutput FitTool::fit(RunContext& ctx, const science::Observation& obs, const std::string& source,
                        std::int64_t events, const RoiSource& roi_of) const {
  const std::pair<double, double> range = analysis_.time_range(obs, source);
  const double t0 = range.first;
  const double t1 = range.second;
  const science::Response response(obs.irf, source);
  const science::FitSettings settings = analysis_.fit_settings(obs);
  ctx.log().info("{}: {} events, {} GTIs; selection {} to {} s", source, events, obs.gti.size(), t0,
                 t1);
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg, {}-{} TeV, index {} {}", settings.ra,
                 settings.dec, settings.theta_max, settings.emin, settings.emax, settings.gamma_ref,
                 settings.free_index ? "(free)" : "(fixed)");
  const std::vector<double> lo{t0};
  const std::vector<double> hi{t1};
  const Schema columns = schema();
  MapResult result = ctx.map(
      "fit", BinPlan::from_edges(science::time_axis(), lo, hi), columns, [&](BinContext& bin) {
        const science::RoiEvents roi = roi_of(t0, t1, settings);
        const science::FitResult f =
            science::fit_bin(response, roi, settings, bin.budget().threads());
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
