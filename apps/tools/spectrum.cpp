#include "tools/spectrum.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/error.hpp"
#include "science/binning.hpp"
#include "science/response.hpp"
#include "tools/fit.hpp"
#include "tools/analysis_input.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

namespace {

// The global fit's values written as /results attributes (names as in `binflow fit`).
const std::vector<std::string>& global_attributes() {
  static const std::vector<std::string> names = {
      "N0", "N0_err", "gamma",   "gamma_err", "beta",     "beta_err", "flux", "flux_err",
      "ts", "N0_ul",  "flux_ul", "npred",     "n_events", "livetime", "lnl",  "iterations"};
  return names;
}

std::string cell_text(const Cell& cell) {
  if (const double* x = std::get_if<double>(&cell)) return fmt::format("{}", *x);
  if (const std::int64_t* n = std::get_if<std::int64_t>(&cell)) return fmt::format("{}", *n);
  return std::get<std::string>(cell);
}

}  // namespace

void SpectrumTool::declare(ParameterSet& params) {
  analysis_.declare(params, AnalysisParameters::input);
  params.add_choice("ebinalg", ebinalg_, {"LOG", "FILE"},
                    "energy binning: enumbins log-spaced bins from emin to emax, or bins from "
                    "ebinfile");
  analysis_.declare(params, AnalysisParameters::energy);
  params.add("enumbins", enumbins_, "number of energy bins (ebinalg=LOG)",
             Range<std::int64_t>{1, 100000});
  params
      .add("ebinfile", ebinfile_,
           "two-column text file of bin energies 'emin emax' in TeV (ebinalg=FILE); the global "
           "fit covers the lowest to the highest edge")
      .input_file();
  analysis_.declare(params, AnalysisParameters::time | AnalysisParameters::region);
  analysis_.declare(params, AnalysisParameters::index,
                    "start value of the index in the global fit (and the index used if that fit "
                    "fails)");
  analysis_.declare(params, AnalysisParameters::quantities);
}

void SpectrumTool::validate() {
  analysis_.validate(true);
  if (ebinalg_ == "FILE" && ebinfile_.empty()) {
    throw UsageError("ebinfile: required with ebinalg=FILE");
  }
}

Schema SpectrumTool::schema() {
  return Schema{
      {"e_min", ColumnType::f64, "TeV", "lower edge of the energy bin"},
      {"e_max", ColumnType::f64, "TeV", "upper edge of the energy bin"},
      {"e_ref", ColumnType::f64, "TeV", "reference energy: sqrt(e_min e_max)"},
      {"dnde", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "differential flux at e_ref"},
      {"dnde_err", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "1-sigma error of dnde"},
      {"ts", ColumnType::f64, "", "test statistic of the source in the bin"},
      {"dnde_ul", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "upper limit on dnde at confidence"},
      {"counts", ColumnType::i64, "", "events in the region of interest and the bin"},
      {"npred", ColumnType::f64, "", "predicted counts of the best fit"},
      {"livetime", ColumnType::f64, "s", "GTI overlap times (1 - deadtime fraction)"},
      {"N0", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "fitted flux at 1 TeV (index fixed)"},
      {"N0_err", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", "1-sigma error of N0"},
      {"gamma", ColumnType::f64, "", "index used (the global fit's)"},
      {"beta", ColumnType::f64, "", "background normalisation"},
      {"beta_err", ColumnType::f64, "", "1-sigma error of beta"},
      {"flux", ColumnType::f64, "ph cm^-2 s^-1", "integral flux e_min..e_max"},
      {"flux_err", ColumnType::f64, "ph cm^-2 s^-1", "1-sigma error of flux"},
      {"lnl", ColumnType::f64, "", "log-likelihood of the best fit"},
      {"iterations", ColumnType::i64, "", "fit iterations"},
  };
}

void SpectrumTool::write_fits(const std::string& path, const ToolOutput& out,
                              const RunProvenance& provenance) const {
  write_flux_points(path, out, provenance, analysis_.confidence);
}

std::vector<TextColumn> SpectrumTool::console_view() const {
  return {{.name = "bin"},
          {.name = "e_min", .distinct = true},
          {.name = "e_max", .distinct = true},
          {.name = "counts"},
          {.name = "dnde", .error = "dnde_err"},
          {.name = "ts"},
          {.name = "dnde_ul"},
          {.name = "gamma", .fixed = true},
          {.name = "beta", .error = "beta_err"},
          {.name = "status"},
          {.name = "message", .optional = true}};
}

BinPlan SpectrumTool::make_plan() const {
  if (ebinalg_ == "FILE") return science::energy_from_file(ebinfile_);
  return science::energy_log(analysis_.emin, analysis_.emax, enumbins_);
}

FitTool::Request SpectrumTool::global_fit(double emin, double emax) const {
  FitTool::Request request;
  request.analysis = analysis_;
  request.analysis.emin = emin;
  request.analysis.emax = emax;
  request.analysis.free_index = true;
  return request;
}

ToolOutput SpectrumTool::execute(RunContext& ctx) {
  // Rank 0 checks the file, the time range and the binning first, so that bad input ends
  // every rank with one message before any work is spread.
  const AnalysisInput input(ctx.runtime().comm, analysis_,
                            [&](const AnalysisInput&) { (void)make_plan(); });
  const BinPlan plan = make_plan();
  double e_lo = plan.bins().front().lo;
  double e_hi = plan.bins().front().hi;
  for (const Bin& b : plan) {
    e_lo = std::min(e_lo, b.lo);
    e_hi = std::max(e_hi, b.hi);
  }
  const double ra = input.settings().ra;
  const double dec = input.settings().dec;
  input.log_summary(ctx.log());
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg; {} energy bins ({}) from {} to {} TeV",
                 ra, dec, analysis_.theta_max, plan.size(), ebinalg_, e_lo, e_hi);

  // 1. The global fit, index free: the same FitTool as `binflow fit`, invoked nested with
  // this rank's whole thread budget (the other ranks wait for its gamma anyway).
  const Schema fit_schema = schema_with_fit_result({});
  const std::vector<double> global_lo{e_lo};
  const std::vector<double> global_hi{e_hi};
  MapResult global =
      ctx.map("global", BinPlan::from_edges(science::energy_axis(), global_lo, global_hi),
              fit_schema, [&](BinContext& bin) {
                FitTool fit;
                const FitTool::Result result = bin.call(
                    fit, global_fit(e_lo, e_hi),
                    NestedRun{.threads = bin.budget().threads(), .chatter = standard().chatter});
                if (result.fit.status == bin_status::failed) {
                  throw Error(fmt::format("global fit failed: {}", result.fit.message));
                }
                bin.set_status(result.fit.status);
                Row row;
                append_fit_result(row, result.fit);
                return row;
              });
  if (global.interrupted) {
    ToolOutput out = ToolOutput::from(std::move(global));
    out.table = Table(schema());
    return out;
  }

  // Rank 0 holds the global row; every rank needs its index.
  std::array<double, 2> shared{analysis_.gamma_ref, 0.0};  // gamma, 1 if the global fit is usable
  std::string global_status(bin_status::failed);
  if (ctx.is_root() && global.table.size() == 1) {
    global_status = global.table.str(0, "status");
    if (global_status == bin_status::ok) shared = {global.table.f64(0, "gamma"), 1.0};
  }
  ctx.runtime().comm.broadcast(shared);
  const double gamma = shared[0];
  if (shared[1] == 1.0) {
    ctx.log().info("global fit: gamma = {:.4f}; every energy bin fits N0 and beta with it fixed",
                   gamma);
  } else {
    ctx.log().warn("global fit {}: the energy bins use gamma_ref = {}", global_status, gamma);
  }

  // 2. Flux points: per energy bin, the ROI and the energy integrals use the bin's range.
  science::FitSettings base;
  base.ra = ra;
  base.dec = dec;
  base.theta_max = analysis_.theta_max;
  base.gamma_ref = gamma;
  base.free_index = false;
  base.calc_ts = analysis_.calc_ts;
  base.calc_ulim = analysis_.calc_ulim;
  base.confidence = analysis_.confidence;
  const Schema columns = schema();
  MapResult points = ctx.map("spectrum", plan, columns, [&](BinContext& bin) {
    const Bin& b = bin.bin();
    science::FitSettings settings = base;
    settings.emin = b.lo;
    settings.emax = b.hi;
    const science::RoiEvents roi =
        input.read_roi(input.t0(), input.t1(), settings, bin.memory_limit());
    check_fit_memory(bin.memory_limit(), roi);
    const science::FitResult f = input.fitter(settings).fit(roi, bin.budget().threads());
    bin.set_status(f.status);
    const double e_ref = std::sqrt(b.lo * b.hi);
    const double scale = std::pow(e_ref, -gamma);  // (e_ref / 1 TeV)^-gamma
    bin.log().info("{} events in the region of interest, livetime {:.1f} s", f.n_events,
                   f.livetime);
    if (f.status == bin_status::ok) {
      bin.log().info(
          "dN/dE({:.4g} TeV) = {:.4e} +- {:.2e}, beta = {:.4f} +- {:.4f}, TS = {:.2f}, "
          "UL = {:.4e}",
          e_ref, f.n0 * scale, f.n0_err * scale, f.beta, f.beta_err, f.ts, f.n0_ul * scale);
    } else {
      bin.log().info("status {}{}{}", f.status, f.message.empty() ? "" : ": ", f.message);
    }
    return RowBuilder(columns)
        .set("e_min", b.lo)
        .set("e_max", b.hi)
        .set("e_ref", e_ref)
        .set("dnde", f.n0 * scale)
        .set("dnde_err", f.n0_err * scale)
        .set("ts", f.ts)
        .set("dnde_ul", f.n0_ul * scale)
        .set("counts", f.n_events)
        .set("npred", f.npred)
        .set("livetime", f.livetime)
        .set("N0", f.n0)
        .set("N0_err", f.n0_err)
        .set("gamma", gamma)
        .set("beta", f.beta)
        .set("beta_err", f.beta_err)
        .set("flux", f.flux)
        .set("flux_err", f.flux_err)
        .set("lnl", f.lnl)
        .set("iterations", std::int64_t{f.iterations})
        .take();
  });

  ToolOutput out = ToolOutput::from(std::move(points));
  out.failed += global.failed;
  out.stats.merge_totals(global.stats);
  if (ctx.is_root()) {
    out.attributes.emplace_back("global_status", global_status);
    if (global.table.size() == 1) {
      const Row& row = global.table.rows()[0];
      for (const std::string& name : global_attributes()) {
        out.attributes.emplace_back(name, cell_text(row[global.table.schema().index_of(name)]));
      }
    }
  }
  return out;
}

}  // namespace binflow::apps
