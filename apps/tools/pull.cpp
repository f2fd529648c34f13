#include "tools/pull.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/dl3.hpp"
#include "science/dl3_response.hpp"
#include "science/event_file.hpp"
#include "science/gti.hpp"
#include "science/observation.hpp"
#include "tools/analysis_input.hpp"
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

// A fit that failed (did not converge, or threw inside its own bin) fails the trial, with
// the reason in the trial's message; empty (no events) is a result, not a failure.
void require_fitted(const science::FitResult& fit, std::string_view what) {
  if (fit.status != bin_status::failed) return;
  throw Error(fmt::format("{} failed{}{}", what, fit.message.empty() ? "" : ": ", fit.message));
}

// Trials compute on one thread, as the nested fit does: fit_threads stays 1 on any launch
// (it is a /results column), and one rank per core is how trials use a node.
constexpr int trial_threads = 1;

TrialFit run_dl3_trial(BinContext& bin, const Dl3Trials& dl3, bool break_fit) {
  if (break_fit) {
    throw Error(
        "fail_trials: this trial fails on purpose (test hook; DL3 trials have no "
        "nested fit to break)");
  }
  // The stream of a nested simulate's first slice (SimulateTool gets derive_seed(0) as its
  // seed): the trial depends on (seed, k) alone.
  RngStream draws(bin.rng().derive_seed(0), 0);
  const science::RoiEvents events = dl3.simulator.draw(draws);
  TrialFit out;
  out.n_simulated = static_cast<std::int64_t>(events.energy.size());
  out.roi_only = true;
  out.fit = dl3.fitter.fit(events, trial_threads);
  out.fit_threads = trial_threads;
  require_fitted(out.fit, "fit");
  return out;
}

// The nested fit resolves tmin and tmax on the simulated observation: checked once here on
// the same GTIs, so that a range without livetime is bad input, not ntrials empty trials.
void check_time_range(const AnalysisParameters& analysis, const science::Observation& obs,
                      const std::string& source) {
  const auto [t0, t1] = analysis.time_range(obs.gti, obs.info.mjdref, source);
  if (!(science::livetime(obs.gti, t0, t1, obs.info.deadtime_fraction) > 0.0)) {
    throw UsageError(fmt::format("tmin, tmax: [{}, {}) s holds no livetime of {}", t0, t1, source));
  }
}

// Where and when the trials of a DL3 set are, as rank 0's AnalysisInput resolved them.
struct Dl3Selection {
  double ra = 0.0;
  double dec = 0.0;
  double t0 = 0.0;
  double t1 = 0.0;
};

// Bad input of a DL3 set for trials: no livetime in [t0, t1), or the source outside the
// field of view of every observation with livetime (no trial would hold a source count).
void check_dl3_observations(const science::dl3::DataSet& data,
                            const std::vector<science::dl3::TrialObservation>& observations,
                            const Dl3Selection& where) {
  bool observed = false;
  bool in_view = false;
  std::string offsets;
  for (std::size_t o = 0; o < observations.size(); ++o) {
    const science::dl3::TrialObservation& t = observations[o];
    if (!(t.livetime > 0.0)) continue;
    observed = true;
    in_view = in_view || t.response.in_field_of_view();
    offsets += fmt::format("{}{} at {:.3g} deg", offsets.empty() ? "" : ", ",
                           data.observations()[o].obs_id, t.response.offset());
  }
  if (!observed) {
    throw UsageError(
        fmt::format("tmin, tmax: [{}, {}) s holds no livetime of the observations of {}", where.t0,
                    where.t1, data.inobs()));
  }
  if (!in_view) {
    throw UsageError(fmt::format(
        "ra, dec: the source at ({}, {}) deg is outside the field of view (the effective area's "
        "offset axis) of every observation of {} (OBS_ID {}): no source to simulate",
        where.ra, where.dec, data.inobs(), offsets));
  }
}

// Per observation its response at the source and its livetime in [t0, t1), in the data
// set's order (the order of the fitter's parts).
Dl3Trials build_dl3_trials(const TrialSetup& setup, const science::dl3::DataSet& data,
                           const science::FitSettings& settings, const Dl3Selection& where) {
  std::vector<science::dl3::TrialObservation> observations;
  std::vector<science::dl3::ObservationResponse> responses;
  double livetime = 0.0;
  std::size_t observing = 0;
  std::vector<std::string> notes;
  for (const science::dl3::Observation& obs : data.observations()) {
    responses.emplace_back(obs, where.ra, where.dec);
    const science::dl3::ObservationResponse& r = responses.back();
    observations.push_back(
        {r, science::livetime(obs.gti, where.t0, where.t1, obs.deadtime_fraction())});
    if (!(observations.back().livetime > 0.0)) continue;
    livetime += observations.back().livetime;
    ++observing;
    if (!r.in_field_of_view()) {
      notes.push_back(
          fmt::format("OBS_ID {}: the source, {:.3g} deg from the pointing, is outside "
                      "its field of view: background only",
                      obs.obs_id, r.offset()));
    }
  }
  check_dl3_observations(data, observations, where);
  return Dl3Trials{science::dl3::RoiSimulator(std::move(observations), settings, setup.n0,
                                              setup.gamma, setup.beta),
                   science::BinFitter(responses, settings), livetime, observing, std::move(notes)};
}

void log_dl3_trials(spdlog::logger& log, const Dl3Trials& dl3) {
  double source = 0.0;
  double background = 0.0;
  for (std::size_t o = 0; o < dl3.simulator.observations(); ++o) {
    const auto [s, b] = dl3.simulator.expected(o);
    source += s;
    background += b;
  }
  log.info(
      "trials: livetime {:.1f} s in {} of {} observations; per trial {:.1f} source + "
      "{:.1f} background events expected in the region of interest, where alone they are "
      "drawn",
      dl3.livetime, dl3.observing, dl3.simulator.observations(), source, background);
  for (const std::string& note : dl3.notes) log.info("{}", note);
}

// Rank 0 opens and checks the set through AnalysisInput (the position and the time range
// resolved as every tool resolves them) and builds its trials; the other ranks take the
// resolved position and range and build theirs. A DL3 open decompresses every .fits.gz (0.2 s
// for the 4 runs of the small fixture), so each rank opens the set once: rank 0 builds from
// its AnalysisInput's data set.
void prepare_dl3_trials(RunContext& ctx, TrialSetup& setup) {
  AnalysisParameters params = setup.fit_parameters();
  params.inobs = setup.inobs;
  const Communicator& comm = ctx.runtime().comm;
  Dl3Selection where;
  std::optional<Dl3Trials> built;
  comm.agree_on_root([&] {
    const AnalysisInput input(params);
    where = {input.settings().ra, input.settings().dec, input.t0(), input.t1()};
    built.emplace(
        build_dl3_trials(setup, *input.data_set(), params.fit_settings(where.ra, where.dec), where));
    input.log_summary(ctx.log());
  });
  comm.broadcast(where);
  if (!built) {
    const science::dl3::DataSet data =
        science::dl3::DataSet::open(setup.inobs, setup.analysis.obs_ids());
    built.emplace(build_dl3_trials(setup, data, params.fit_settings(where.ra, where.dec), where));
  }
  setup.analysis.ra = where.ra;
  setup.analysis.dec = where.dec;
  setup.dl3 = std::move(built);
  log_dl3_trials(ctx.log(), *setup.dl3);
}

}  // namespace

void TrialSetup::declare_trials(ParameterSet& params) {
  params.add("ntrials", ntrials, "number of Monte Carlo trials; trial k draws from (seed, k)",
             Range<std::int64_t>{1, std::int64_t{1} << 40});
  params
      .add("inobs", inobs,
           "HDF5 event file, DL3 FITS file, DL3 index directory or text list of DL3 files "
           "whose responses, GTIs, deadtime and pointings are simulated (its events are not "
           "used); empty = the embedded instrument and a default observation of `duration` s")
      .input_file(true);
  params.add("obs_id", analysis.obs_id,
             "OBS_IDs of a DL3 inobs to simulate, comma-separated (default: all)");
  params.add("duration", duration,
             "length of the embedded observation, s (1800 = one 30-minute run; ignored with "
             "inobs)",
             Range<double>{1.0, 1e10});
  analysis.declare(params, AnalysisParameters::time);
}

AnalysisParameters TrialSetup::fit_parameters() const {
  AnalysisParameters p = analysis;
  p.inobs.clear();
  p.gamma_ref = gamma;
  p.calc_ts = true;
  return p;
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
  // The nested fit's own cuts (fit() below), from the same settings it is given: the
  // simulation keeps what the fit can select and skips the rest after drawing it, so the
  // fit sees the events it would see without the filter, bit for bit, and the simulation
  // costs a quarter of the instructions (docs/benchmarks.md, "Monte Carlo statistics"). The
  // time range (tmin, tmax) is left to the fit.
  const science::FitSettings s = fit_parameters().fit_settings(analysis.ra, analysis.dec);
  r.keep = science::RoiFilter{s.ra, s.dec, s.theta_max, s.emin, s.emax};
  return r;
}

FitTool::Request TrialSetup::fit(SimulateTool::Result simulated, bool break_fit) const {
  FitTool::Request r;
  r.analysis = fit_parameters();
  if (break_fit) r.analysis.emin = 0.0;
  r.observation = std::move(simulated.observation);
  r.events = std::move(simulated.events);
  return r;
}

std::string TrialSetup::observation_text() const {
  if (inobs.empty()) return fmt::format("a {} s embedded observation", duration);
  if (dl3) return "the responses and GTIs of the DL3 observations of " + inobs;
  return "the response and GTIs of " + inobs;
}

std::string TrialFit::events_text() const {
  if (roi_only) return fmt::format("{} events drawn in the region", n_simulated);
  return fmt::format("{} events simulated, {} in the region", n_simulated, fit.n_events);
}

TrialFit run_trial(BinContext& bin, const TrialSetup& setup, bool break_fit) {
  if (setup.dl3) return run_dl3_trial(bin, *setup.dl3, break_fit);
  const NestedRun how{.threads = trial_threads, .chatter = setup.chatter};
  SimulateTool simulate;
  SimulateTool::Result simulated = bin.call(simulate, setup.simulation(), how);
  TrialFit out;
  out.n_simulated = simulated.drawn;
  FitTool fit;
  FitTool::Result result = bin.call(fit, setup.fit(std::move(simulated), break_fit), how);
  require_fitted(result.fit, "nested fit");
  out.fit = std::move(result.fit);
  out.fit_threads = result.threads;
  return out;
}

void prepare_trials(RunContext& ctx, TrialSetup& setup) {
  const Communicator& comm = ctx.runtime().comm;
  if (!setup.inobs.empty()) {
    comm.agree_on_root([&] { (void)science::dl3::input_kind(setup.inobs); });
    if (science::dl3::input_kind(setup.inobs) != science::dl3::InputKind::event_file) {
      prepare_dl3_trials(ctx, setup);
      return;
    }
  }
  // The nested simulate reads the event file itself; its observation here only checks the
  // time range and gives the default position.
  const auto observation = [&] {
    return setup.inobs.empty() ? science::default_observation(setup.duration)
                               : science::EventFileReader(setup.inobs).observation();
  };
  const std::string source = setup.inobs.empty() ? "the embedded observation" : setup.inobs;
  comm.agree_on_root([&] { check_time_range(setup.analysis, observation(), source); });
  const science::ObservationInfo info = observation().info;
  if (std::isnan(setup.analysis.ra)) setup.analysis.ra = info.ra_pnt;
  if (std::isnan(setup.analysis.dec)) setup.analysis.dec = info.dec_pnt;
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
         "thread budget of the nested fit (DL3: of the trial's fit); always 1"});
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
    bin.log().info("{}: fit status {}{}{}", trial.events_text(), f.status,
                   f.message.empty() ? "" : ": ", f.message);
  } else {
    bin.log().info(
        "{}: N0 = {:.4e} +- {:.2e}, beta = {:.4f} +- {:.4f}{}, TS = {:.1f}", trial.events_text(),
        f.n0, f.n0_err, f.beta, f.beta_err,
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
                 setup.ntrials, setup.observation_text(), setup.n0, setup.gamma, setup.beta,
                 setup.analysis.ra, setup.analysis.dec);
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
