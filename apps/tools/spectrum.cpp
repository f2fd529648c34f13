#include "tools/spectrum.hpp"

#include <mpi.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/response.hpp"
#include "tools/fit.hpp"

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

void SpectrumTool::reset() {
  analysis_.reset();
  ebinalg_ = "LOG";
  enumbins_ = 20;
  ebinfile_.clear();
}

void SpectrumTool::declare(ParameterSet& params) {
  analysis_.declare(params, AnalysisParameters::input);
  params.add_choice("ebinalg", ebinalg_, {"LOG", "FILE"},
                    "energy binning: enumbins log-spaced bins from emin to emax, or bins from "
                    "ebinfile");
  analysis_.declare(params, AnalysisParameters::energy);
  params.add("enumbins", enumbins_, "number of energy bins (ebinalg=LOG)",
             Range<std::int64_t>{1, 100000});
  params.add("ebinfile", ebinfile_,
             "two-column text file of bin energies 'emin emax' in TeV (ebinalg=FILE); the global "
             "fit covers the lowest to the highest edge");
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

BinPlan SpectrumTool::make_plan() const {
  if (ebinalg_ == "FILE") return BinPlan::energy_from_file(ebinfile_);
  return BinPlan::energy_log(analysis_.emin, analysis_.emax, enumbins_);
}

std::vector<std::string> SpectrumTool::global_fit_args(double emin, double emax) const {
  // "{}" prints the shortest text that parses back to the same double.
  std::vector<std::string> args = {
      "inobs=" + analysis_.inobs,
      fmt::format("emin={}", emin),
      fmt::format("emax={}", emax),
      fmt::format("theta_max={}", analysis_.theta_max),
      fmt::format("gamma_ref={}", analysis_.gamma_ref),
      "free_index=yes",
      fmt::format("calc_ts={}", analysis_.calc_ts ? "yes" : "no"),
      fmt::format("calc_ulim={}", analysis_.calc_ulim ? "yes" : "no"),
      fmt::format("confidence={}", analysis_.confidence),
      fmt::format("chatter={}", standard().chatter),
  };
  if (std::isfinite(analysis_.tmin)) args.push_back(fmt::format("tmin={}", analysis_.tmin));
  if (std::isfinite(analysis_.tmax)) args.push_back(fmt::format("tmax={}", analysis_.tmax));
  if (!std::isnan(analysis_.ra)) {
    args.push_back(fmt::format("ra={}", analysis_.ra));
    args.push_back(fmt::format("dec={}", analysis_.dec));
  }
  return args;
}

ToolOutput SpectrumTool::execute(RunContext& ctx) {
  // Rank 0 checks the file, the time range and the binning first, so that bad input ends
  // every rank with one message before any work is spread.
  agree_on_root(ctx.runtime().comm, [&] {
    (void)analysis_.time_range(science::EventFileReader(analysis_.inobs).observation(),
                               analysis_.inobs);
    (void)make_plan();
  });
  const science::EventFileReader reader(analysis_.inobs);
  const science::Observation& obs = reader.observation();
  const science::Response response(obs.irf, analysis_.inobs);
  const std::pair<double, double> range = analysis_.time_range(obs, analysis_.inobs);
  const double t0 = range.first;
  const double t1 = range.second;
  const BinPlan plan = make_plan();
  double e_lo = plan.bins().front().lo;
  double e_hi = plan.bins().front().hi;
  for (const Bin& b : plan) {
    e_lo = std::min(e_lo, b.lo);
    e_hi = std::max(e_hi, b.hi);
  }
  const double ra = std::isnan(analysis_.ra) ? obs.info.ra_pnt : analysis_.ra;
  const double dec = std::isnan(analysis_.dec) ? obs.info.dec_pnt : analysis_.dec;
  ctx.log().info("{}: {} events, {} GTIs; selection {} to {} s", analysis_.inobs, reader.size(),
                 obs.gti.size(), t0, t1);
  ctx.log().info("source at ({}, {}) deg, theta_max {} deg; {} energy bins ({}) from {} to {} TeV",
                 ra, dec, analysis_.theta_max, plan.size(), ebinalg_, e_lo, e_hi);

  // 1. The global fit, index free: the same FitTool as `binflow fit`, invoked nested with
  // this rank's whole thread budget (the other ranks wait for its gamma anyway).
  const Schema fit_schema = FitTool::schema();
  const std::vector<double> global_lo{e_lo};
  const std::vector<double> global_hi{e_hi};
  MapResult global = ctx.map(
      "global", BinPlan::from_edges(BinKind::energy, global_lo, global_hi), fit_schema,
      [&](BinContext& bin) {
        FitTool fit;
        const ToolOutput out = bin.invoke(fit, global_fit_args(e_lo, e_hi), bin.budget().threads());
        if (out.table.size() != 1) throw InternalError("nested fit: no result row");
        const std::string& status = out.table.str(0, "status");
        if (status == "failed") {
          throw Error(fmt::format("global fit failed: {}", out.table.str(0, "message")));
        }
        bin.set_status(status);
        Row row;
        for (const Column& c : fit_schema.columns()) {
          row.push_back(out.table.rows()[0][out.table.schema().index_of(c.name)]);
        }
        return row;
      });
  if (global.interrupted) {
    ToolOutput out = ToolOutput::from(std::move(global));
    out.table = Table(schema());
    return out;
  }

  // Rank 0 holds the global row; every rank needs its index.
  std::array<double, 2> shared{analysis_.gamma_ref, 0.0};  // gamma, 1 if the global fit is usable
  std::string global_status = "failed";
  if (ctx.is_root() && global.table.size() == 1) {
    global_status = global.table.str(0, "status");
    if (global_status == "ok") shared = {global.table.f64(0, "gamma"), 1.0};
  }
  check_mpi(MPI_Bcast(shared.data(), 2, MPI_DOUBLE, 0, ctx.runtime().comm.get()), "MPI_Bcast");
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
  MapResult points = ctx.map("spectrum", plan, schema(), [&](BinContext& bin) {
    const Bin& b = bin.bin();
    science::FitSettings settings = base;
    settings.emin = b.lo;
    settings.emax = b.hi;
    const science::RoiEvents roi = read_roi(reader, t0, t1, settings);
    const science::FitResult f = science::fit_bin(response, roi, settings, bin.budget().threads());
    bin.set_status(f.status);
    const double e_ref = std::sqrt(b.lo * b.hi);
    const double scale = std::pow(e_ref, -gamma);  // (e_ref / 1 TeV)^-gamma
    bin.log().info("{} events in the region of interest, livetime {:.1f} s", f.n_events,
                   f.livetime);
    if (f.status == "ok") {
      bin.log().info(
          "dN/dE({:.4g} TeV) = {:.4e} +- {:.2e}, beta = {:.4f} +- {:.4f}, TS = {:.2f}, "
          "UL = {:.4e}",
          e_ref, f.n0 * scale, f.n0_err * scale, f.beta, f.beta_err, f.ts, f.n0_ul * scale);
    } else {
      bin.log().info("status {}{}{}", f.status, f.message.empty() ? "" : ": ", f.message);
    }
    return Row{b.lo,
               b.hi,
               e_ref,
               f.n0 * scale,
               f.n0_err * scale,
               f.ts,
               f.n0_ul * scale,
               f.n_events,
               f.npred,
               f.livetime,
               f.n0,
               f.n0_err,
               gamma,
               f.beta,
               f.beta_err,
               f.flux,
               f.flux_err,
               f.lnl,
               std::int64_t{f.iterations}};
  });

  const std::int64_t global_failed = global.failed;
  const double global_wall = global.wall;
  std::vector<RankStats> global_ranks = std::move(global.ranks);
  ToolOutput out = ToolOutput::from(std::move(points));
  out.failed += global_failed;
  out.wall += global_wall;
  if (global_ranks.size() == out.ranks.size()) {
    for (std::size_t r = 0; r < out.ranks.size(); ++r) {
      out.ranks[r].busy += global_ranks[r].busy;
      out.ranks[r].idle += global_ranks[r].idle;
      out.ranks[r].bins += global_ranks[r].bins;
    }
  }
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
