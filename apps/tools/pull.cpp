#include "tools/pull.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/event_file.hpp"
#include "science/observation.hpp"
#include "tools/fit.hpp"
#include "tools/simulate.hpp"

namespace binflow::apps {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

double pull(double fitted, double truth, double error) {
  return std::isfinite(error) && error > 0.0 ? (fitted - truth) / error : nan;
}

void add_summary(ToolOutput& out, spdlog::logger& log, const std::string& name,
                 const SampleSummary& s) {
  log.info("{}: mean {:+.4f} +- {:.4f}, width {:.4f} +- {:.4f} ({} trials)", name, s.mean,
           s.mean_err, s.width, s.width_err, s.n);
  out.attributes.emplace_back(name + "_n", fmt::format("{}", s.n));
  out.attributes.emplace_back(name + "_mean", fmt::format("{}", s.mean));
  out.attributes.emplace_back(name + "_mean_err", fmt::format("{}", s.mean_err));
  out.attributes.emplace_back(name + "_width", fmt::format("{}", s.width));
  out.attributes.emplace_back(name + "_width_err", fmt::format("{}", s.width_err));
}

}  // namespace

void TrialSetup::declare_trials(ParameterSet& params) {
  params.add("ntrials", ntrials, "number of Monte Carlo trials; trial k draws from (seed, k)",
             Range<std::int64_t>{1, std::int64_t{1} << 40});
  params
      .add("inobs", inobs,
           "event file whose response, GTIs, deadtime and pointing are simulated (its events "
           "are not used); empty = the embedded instrument and a default observation of "
           "`duration` s")
      .input_file(true);
  params.add("duration", duration,
             "length of the embedded observation, s (1800 = one 30-minute run; ignored with "
             "inobs)",
             Range<double>{1.0, 1e10});
}

SimulateTool::Request TrialSetup::simulation() const {
  SimulateTool::Request r;
  r.n0 = n0;
  r.gamma = gamma;
  r.beta = beta;
  r.ra = analysis.ra;
  r.dec = analysis.dec;
  if (inobs.empty()) {
    r.duration = duration;
  } else {
    r.inirf = inobs;
  }
  return r;
}

FitTool::Request TrialSetup::fit(SimulateTool::Result simulated, bool break_fit) const {
  FitTool::Request r;
  r.analysis = analysis;
  r.analysis.inobs.clear();
  r.analysis.gamma_ref = gamma;
  r.analysis.calc_ts = true;
  if (break_fit) r.analysis.emin = 0.0;
  r.observation = std::move(simulated.observation);
  r.events = std::move(simulated.events);
  return r;
}

TrialFit run_trial(BinContext& bin, const TrialSetup& setup, bool break_fit) {
  const NestedRun how{.threads = 1, .chatter = setup.chatter};
  SimulateTool simulate;
  SimulateTool::Result simulated = bin.call(simulate, setup.simulation(), how);
  TrialFit out;
  out.n_simulated = static_cast<std::int64_t>(simulated.events.size());
  FitTool fit;
  FitTool::Result result = bin.call(fit, setup.fit(std::move(simulated), break_fit), how);
  // A fit that failed (did not converge, or threw inside its own bin) fails the trial, with
  // the reason in the trial's message; empty (no events) is a result, not a failure.
  if (result.fit.status == bin_status::failed) {
    throw Error(fmt::format("nested fit failed{}{}", result.fit.message.empty() ? "" : ": ",
                            result.fit.message));
  }
  out.fit = std::move(result.fit);
  out.fit_threads = result.threads;
  return out;
}

void prepare_trials(RunContext& ctx, TrialSetup& setup) {
  double& ra = setup.analysis.ra;
  double& dec = setup.analysis.dec;
  if (setup.inobs.empty()) {
    const science::ObservationInfo embedded;
    if (std::isnan(ra)) ra = embedded.ra_pnt;
    if (std::isnan(dec)) dec = embedded.dec_pnt;
    return;
  }
  ctx.runtime().comm.agree_on_root([&] { (void)science::EventFileReader(setup.inobs); });
  const science::Observation obs = science::EventFileReader(setup.inobs).observation();
  if (obs.gti.size() == 0) throw UsageError(fmt::format("{}: /gti is empty", setup.inobs));
  if (std::isnan(ra)) ra = obs.info.ra_pnt;
  if (std::isnan(dec)) dec = obs.info.dec_pnt;
}

SampleSummary summarize(std::span<const double> values) {
  SampleSummary s;
  double sum = 0.0;
  for (const double v : values) {
    if (!std::isfinite(v)) continue;
    ++s.n;
    sum += v;
  }
  const auto n = static_cast<double>(s.n);
  s.mean = s.n > 0 ? sum / n : nan;
  double squares = 0.0;
  for (const double v : values) {
    if (std::isfinite(v)) squares += (v - s.mean) * (v - s.mean);
  }
  s.width = s.n > 1 ? std::sqrt(squares / (n - 1.0)) : nan;
  s.mean_err = s.n > 1 ? s.width / std::sqrt(n) : nan;
  s.width_err = s.n > 1 ? s.width / std::sqrt(2.0 * (n - 1.0)) : nan;
  return s;
}

Fraction binomial_fraction(std::int64_t k, std::int64_t n) {
  Fraction f{k, n, nan, nan};
  if (n <= 0) return f;
  f.value = static_cast<double>(k) / static_cast<double>(n);
  f.err = std::sqrt(f.value * (1.0 - f.value) / static_cast<double>(n));
  return f;
}

std::vector<double> ok_values(const Table& table, const std::string& column) {
  std::vector<double> out;
  out.reserve(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (table.str(i, "status") == bin_status::ok) out.push_back(table.f64(i, column));
  }
  return out;
}

void PullTool::declare(ParameterSet& params) {
  setup_.declare_trials(params);
  params.add("N0", setup_.n0, "true source flux at 1 TeV, ph cm^-2 s^-1 TeV^-1",
             Range<double>{0.0, {}});
  params.add("gamma", setup_.gamma,
             "true spectral index (the fitted index when it is fixed, the start value when free)",
             Range<double>{-1.0, 6.0});
  params.add("beta", setup_.beta, "true background normalisation", Range<double>{0.0, {}});
  setup_.analysis.declare(params, AnalysisParameters::region | AnalysisParameters::energy |
                                      AnalysisParameters::free | AnalysisParameters::ulim);
  params.add_list("fail_trials", fail_trials_,
                  "test hook: trials whose nested fit is given an invalid emin, to show that a "
                  "nested failure fails only its trial");
}

void PullTool::validate() {
  setup_.analysis.validate(false);
  for (const std::int64_t k : fail_trials_) {
    if (k < 0 || k >= setup_.ntrials) {
      throw UsageError(
          fmt::format("fail_trials: trial {} is outside 0..{}", k, setup_.ntrials - 1));
    }
  }
}

Schema PullTool::schema(bool free_index, bool calc_ulim) {
  const std::string flux_unit = "ph cm^-2 s^-1 TeV^-1";
  Schema s{
      {"n_events", ColumnType::i64, "", "events in the region of interest"},
      {"N0", ColumnType::f64, flux_unit, "fitted flux at 1 TeV"},
      {"N0_err", ColumnType::f64, flux_unit, "1-sigma error of N0"},
      {"pull_N0", ColumnType::f64, "", "(N0 - true N0) / N0_err"},
  };
  if (free_index) {
    s.add({"gamma", ColumnType::f64, "", "fitted spectral index"});
    s.add({"gamma_err", ColumnType::f64, "", "1-sigma error of gamma"});
    s.add({"pull_gamma", ColumnType::f64, "", "(gamma - true gamma) / gamma_err"});
  }
  s.add({"beta", ColumnType::f64, "", "fitted background normalisation"});
  s.add({"beta_err", ColumnType::f64, "", "1-sigma error of beta"});
  s.add({"pull_beta", ColumnType::f64, "", "(beta - true beta) / beta_err"});
  s.add({"ts", ColumnType::f64, "", "test statistic of the source"});
  if (calc_ulim) {
    s.add({"N0_ul", ColumnType::f64, flux_unit, "upper limit on N0 at confidence"});
    s.add({"ul_covers", ColumnType::i64, "", "1 if N0_ul >= true N0, else 0"});
  }
  s.add({"fit_threads", ColumnType::i64, "",
         "thread budget of the nested fit (diagnostic of nested invocation: always 1)"});
  return s;
}

Row PullTool::run_pull_trial(BinContext& bin, const TrialSetup& setup,
                             const Schema& columns) const {
  const bool break_fit =
      std::binary_search(fail_trials_.begin(), fail_trials_.end(), bin.bin().index);
  const TrialFit trial = run_trial(bin, setup, break_fit);
  const science::FitResult& f = trial.fit;
  const AnalysisParameters& a = setup.analysis;
  bin.set_status(f.status);
  if (f.status != bin_status::ok) {
    bin.log().info("{} events simulated, {} in the region: fit status {}{}{}", trial.n_simulated,
                   f.n_events, f.status, f.message.empty() ? "" : ": ", f.message);
  } else {
    bin.log().info(
        "{} events simulated, {} in the region: N0 = {:.4e} +- {:.2e}, beta = {:.4f} +- "
        "{:.4f}{}, TS = {:.1f}",
        trial.n_simulated, f.n_events, f.n0, f.n0_err, f.beta, f.beta_err,
        a.free_index ? fmt::format(", gamma = {:.3f} +- {:.3f}", f.gamma, f.gamma_err) : "", f.ts);
  }
  RowBuilder row(columns);
  row.set("n_events", f.n_events)
      .set("N0", f.n0)
      .set("N0_err", f.n0_err)
      .set("pull_N0", pull(f.n0, setup.n0, f.n0_err))
      .set("beta", f.beta)
      .set("beta_err", f.beta_err)
      .set("pull_beta", pull(f.beta, setup.beta, f.beta_err))
      .set("ts", f.ts)
      .set("fit_threads", trial.fit_threads);
  if (a.free_index) {
    row.set("gamma", f.gamma)
        .set("gamma_err", f.gamma_err)
        .set("pull_gamma", pull(f.gamma, setup.gamma, f.gamma_err));
  }
  if (a.calc_ulim) {
    row.set("N0_ul", f.n0_ul).set("ul_covers", std::int64_t{f.n0_ul >= setup.n0 ? 1 : 0});
  }
  return row.take();
}

std::vector<TextColumn> PullTool::console_view() const {
  const AnalysisParameters& a = setup_.analysis;
  std::vector<TextColumn> view = {{.name = "bin"},
                                  {.name = "n_events"},
                                  {.name = "N0", .error = "N0_err"},
                                  {.name = "pull_N0"}};
  if (a.free_index) {
    view.push_back({.name = "gamma", .error = "gamma_err"});
    view.push_back({.name = "pull_gamma"});
  }
  view.push_back({.name = "beta", .error = "beta_err"});
  view.push_back({.name = "pull_beta"});
  view.push_back({.name = "ts"});
  if (a.calc_ulim) view.push_back({.name = "N0_ul"});
  view.push_back({.name = "status"});
  view.push_back({.name = "message", .optional = true});
  return view;
}

ToolOutput PullTool::execute(RunContext& ctx) {
  std::sort(fail_trials_.begin(), fail_trials_.end());
  TrialSetup setup = setup_;
  setup.chatter = std::max(0, ctx.settings().chatter - 1);
  prepare_trials(ctx, setup);
  ctx.log().info("{} trials of {}; true model N0 {} at 1 TeV, gamma {}, beta {} at ({}, {})",
                 setup.ntrials,
                 setup.inobs.empty() ? fmt::format("a {} s embedded observation", setup.duration)
                                     : "the response and GTIs of " + setup.inobs,
                 setup.n0, setup.gamma, setup.beta, setup.analysis.ra, setup.analysis.dec);
  const AnalysisParameters& a = setup.analysis;
  ctx.log().info("fit: {}-{} TeV within {} deg, index {}{}", a.emin, a.emax, a.theta_max,
                 a.free_index ? "free" : "fixed",
                 a.calc_ulim ? fmt::format(", {} upper limits", a.confidence) : "");
  const Schema columns = schema(a.free_index, a.calc_ulim);
  MapResult result = ctx.map("pull", BinPlan::trials(setup.ntrials), columns,
                             [&](BinContext& bin) { return run_pull_trial(bin, setup, columns); });
  ToolOutput out = ToolOutput::from(std::move(result));
  if (!ctx.is_root() || out.interrupted) return out;

  const Table& t = out.table;
  std::int64_t ok = 0;
  for (std::size_t i = 0; i < t.size(); ++i) ok += t.str(i, "status") == bin_status::ok ? 1 : 0;
  ctx.log().info("summary over {} of {} trials with status ok:", ok, t.size());
  out.attributes.emplace_back("trials_ok", fmt::format("{}", ok));
  add_summary(out, ctx.log(), "pull_N0", summarize(ok_values(t, "pull_N0")));
  if (a.free_index) {
    add_summary(out, ctx.log(), "pull_gamma", summarize(ok_values(t, "pull_gamma")));
  }
  add_summary(out, ctx.log(), "pull_beta", summarize(ok_values(t, "pull_beta")));
  if (a.calc_ulim) {
    std::int64_t covered = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t.str(i, "status") == bin_status::ok) covered += t.i64(i, "ul_covers");
    }
    const Fraction c = binomial_fraction(covered, ok);
    ctx.log().info(
        "upper limit at {}: N0_ul >= true N0 in {} of {} trials, coverage {:.4f} +- {:.4f}",
        a.confidence, covered, ok, c.value, c.err);
    out.attributes.emplace_back("ul_coverage", fmt::format("{}", c.value));
    out.attributes.emplace_back("ul_coverage_err", fmt::format("{}", c.err));
  }
  return out;
}

}  // namespace binflow::apps
