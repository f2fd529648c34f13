#include "tools/tsdist.hpp"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::apps {

namespace {

// SCIENCE.md section 6: P(TS > 2.706) = 0.05 for half chi^2(1 dof) (the chi^2(1) quantile
// at 0.9 is 2.70554); 25 is the usual detection threshold.
constexpr double ts_threshold = 2.706;
constexpr double ts_detection = 25.0;

}  // namespace

double half_chi2_tail(double threshold) { return 0.5 * std::erfc(std::sqrt(0.5 * threshold)); }

TrialSetup TsdistTool::background_only() {
  TrialSetup setup;
  setup.n0 = 0.0;
  setup.analysis.calc_ulim = false;
  return setup;
}

void TsdistTool::declare(ParameterSet& params) {
  setup_.declare_trials(params);
  params.add("gamma", setup_.gamma, "spectral index of the test source (fixed in the fit)",
             Range<double>{-1.0, 6.0});
  params.add("beta", setup_.beta, "true background normalisation", Range<double>{0.0, {}});
  setup_.analysis.declare(params, AnalysisParameters::region | AnalysisParameters::energy);
}

void TsdistTool::validate() { setup_.analysis.validate(false); }

Schema TsdistTool::schema() {
  const std::string flux_unit = "ph cm^-2 s^-1 TeV^-1";
  return Schema{
      {"n_events", ColumnType::i64, "", "events in the region of interest"},
      {"ts", ColumnType::f64, "", "test statistic of the source (true N0 = 0)"},
      {"N0", ColumnType::f64, flux_unit, "fitted flux at 1 TeV (N0 >= 0)"},
      {"N0_err", ColumnType::f64, flux_unit, "1-sigma error of N0"},
      {"beta", ColumnType::f64, "", "fitted background normalisation"},
      {"beta_err", ColumnType::f64, "", "1-sigma error of beta"},
      {"fit_threads", ColumnType::i64, "",
       "thread budget of the nested fit (DL3: of the trial's fit); always 1"},
  };
}

std::vector<TextColumn> TsdistTool::console_view() const {
  return {{.name = "bin"},
          {.name = "n_events"},
          {.name = "ts"},
          {.name = "N0", .error = "N0_err"},
          {.name = "beta", .error = "beta_err"},
          {.name = "status"},
          {.name = "message", .optional = true}};
}

ToolOutput TsdistTool::execute(RunContext& ctx) {
  TrialSetup setup = setup_;
  setup.chatter = std::max(0, ctx.settings().chatter - 1);
  prepare_trials(ctx, setup);
  ctx.log().info(
      "{} background-only trials of {}; background beta {}, test source at ({}, {}) with index "
      "{}; fit {}-{} TeV within {} deg",
      setup.ntrials, setup.observation_text(), setup.beta, setup.analysis.ra, setup.analysis.dec,
      setup.gamma, setup.analysis.emin, setup.analysis.emax, setup.analysis.theta_max);
  const Schema columns = schema();
  MapResult result =
      ctx.map("tsdist", BinPlan::trials(setup.ntrials), columns, [&](BinContext& bin) {
        const TrialFit f = run_trial(bin, setup);
        const science::FitResult& fit = f.fit;
        bin.set_status(fit.status);
        const bool ok = fit.status == bin_status::ok;
        bin.log().info("{}: TS = {:.3f}, N0 = {:.3e}{}{}", f.events_text(), fit.ts, fit.n0,
                       ok ? "" : ", status ", ok ? "" : fit.status);
        return RowBuilder(columns)
            .set("n_events", fit.n_events)
            .set("ts", fit.ts)
            .set("N0", fit.n0)
            .set("N0_err", fit.n0_err)
            .set("beta", fit.beta)
            .set("beta_err", fit.beta_err)
            .set("fit_threads", f.fit_threads)
            .take();
      });
  ToolOutput out = ToolOutput::from(std::move(result));
  if (!ctx.is_root() || out.interrupted) return out;

  const std::vector<double> ts = ok_values(out.table, "ts");
  const auto n = static_cast<std::int64_t>(ts.size());
  out.attributes.emplace_back("trials_ok", fmt::format("{}", n));
  ctx.log().info("summary over {} of {} trials with status ok:", n, out.table.size());
  const SampleSummary s = summarize(ts);
  ctx.log().info("TS: mean {:.4f} +- {:.4f} (half chi^2(1): 0.5)", s.mean, s.mean_err);
  out.attributes.emplace_back("ts_mean", fmt::format("{}", s.mean));
  out.attributes.emplace_back("ts_mean_err", fmt::format("{}", s.mean_err));
  for (const double threshold : {ts_threshold, ts_detection}) {
    std::int64_t above = 0;
    for (const double v : ts) above += v > threshold ? 1 : 0;
    const Fraction f = binomial_fraction(above, n);
    const double expected = half_chi2_tail(threshold);
    // The error of the expectation for n trials, so that the deviation reads in sigmas
    // even when no trial is above (25: expected 2.9e-7).
    const double sigma = std::sqrt(expected * (1.0 - expected) / static_cast<double>(n));
    const std::string key =
        fmt::format("ts_fraction_above_{}", threshold == ts_threshold ? "2.706" : "25");
    ctx.log().info(
        "TS > {:.3f}: {} of {} trials, fraction {:.5f} +- {:.5f}; half chi^2(1) expects {:.4g} "
        "({:+.2f} sigma)",
        threshold, above, n, f.value, f.err, expected, (f.value - expected) / sigma);
    out.attributes.emplace_back(key, fmt::format("{}", f.value));
    out.attributes.emplace_back(key + "_err", fmt::format("{}", f.err));
    out.attributes.emplace_back(key + "_expected", fmt::format("{}", expected));
  }
  return out;
}

}  // namespace binflow::apps
