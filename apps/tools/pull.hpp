#pragma once
// `binflow pull`: the ctools cspull of binflow. Each Monte Carlo trial simulates an
// observation of a known model and fits it; the pulls (fit - true) / error over many trials
// check the fit's bias and errors (SCIENCE.md section 6). A trial is one bin of
// BinPlan::trials, on one thread, seeded from the trial's stream (seed, k), so the results
// do not depend on ranks, threads or schedule:
// - embedded instrument or an HDF5 event file: `simulate` (in memory) and `fit` nested
//   through BinContext::call, on MPI_COMM_SELF;
// - DL3 data (SCIENCE.md section 7): no nested tool; the observations' responses, a
//   dl3::RoiSimulator and a BinFitter are built once per run (Dl3Trials) and every trial
//   draws its events inside the region of interest and fits them with those.
//
// The trial machinery and the summary statistics are shared with `binflow tsdist`.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "binflow/bin_context.hpp"
#include "binflow/tool.hpp"
#include "science/defaults.hpp"
#include "science/dl3_simulate.hpp"
#include "science/likelihood.hpp"
#include "tools/analysis.hpp"
#include "tools/fit.hpp"
#include "tools/simulate.hpp"

namespace binflow::apps {

/// What every trial on DL3 data shares, built once per run by prepare_trials (every rank
/// builds the same): the simulator of the true model inside the region of interest of each
/// observation, with the observation's response at the source and its livetime in
/// [tmin, tmax), and the fitter of the same responses. Immutable and thread-safe.
struct Dl3Trials {
  science::dl3::RoiSimulator simulator;
  science::BinFitter fitter;
  double livetime = 0.0;      ///< of the observations in [tmin, tmax), s
  std::size_t observing = 0;  ///< observations with livetime in [tmin, tmax)
  /// For the run log: the observations with livetime whose field of view misses the source.
  std::vector<std::string> notes;
};

/// The observation, true model and analysis of every Monte Carlo trial of pull and tsdist.
struct TrialSetup {
  std::int64_t ntrials = 100;  ///< trial k draws from the stream (seed, k)
  /// Response and GTIs from this HDF5 event file or DL3 input (found from the content);
  /// empty = the embedded instrument.
  std::string inobs;
  double duration = 1800.0;  ///< length of the embedded observation, s (ignored with inobs)
  double n0 = science::defaults::n0;        ///< true source flux at 1 TeV
  double gamma = science::defaults::gamma;  ///< true index (and the fitted index when fixed)
  double beta = science::defaults::beta;    ///< true background normalisation
  /// Where and what the trials fit: obs_id (DL3), tmin and tmax, energy range, region (ra
  /// and dec NaN = the pointing, or the DL3 observations' common target, resolved by
  /// prepare_trials), free_index, calc_ulim, confidence. gamma_ref and calc_ts are not
  /// parameters of the trials (the true gamma; always on): see fit_parameters().
  AnalysisParameters analysis;
  int chatter = 1;  ///< of the nested tools (their lines go into the trial's log block)
  /// Set by prepare_trials when inobs is DL3: the trials run on it, without nested tools.
  std::optional<Dl3Trials> dl3;

  /// Declares `ntrials`, `inobs`, `obs_id`, `duration`, `tmin` and `tmax` (how many trials,
  /// and the observation every trial simulates and fits).
  void declare_trials(ParameterSet& params);
  /// `analysis` as every trial fits it: gamma_ref the true gamma, calc_ts on.
  [[nodiscard]] AnalysisParameters fit_parameters() const;
  /// The nested simulation of the true model, keeping in memory only the events the nested
  /// fit can select (Request::keep from fit_parameters()'s cuts): the fit's events, and so
  /// every result of the trial, are the same bits as with the unfiltered simulation.
  [[nodiscard]] SimulateTool::Request simulation() const;
  /// The nested fit of `simulated`; `break_fit` gives it an invalid emin (test hook).
  [[nodiscard]] FitTool::Request fit(SimulateTool::Result simulated, bool break_fit = false) const;
  /// For the run log: what the trials simulate ("a 1800 s embedded observation", "the
  /// response and GTIs of obs.h5", "the responses and GTIs of the DL3 observations of dir").
  [[nodiscard]] std::string observation_text() const;
};

/// What one trial's fit returned.
struct TrialFit {
  science::FitResult fit;  ///< status ok or empty (a failed fit fails the trial)
  /// Events simulated: drawn on the whole IRF grid and background cap by a nested simulate
  /// (embedded, HDF5; the events the file of that simulation would hold, although the
  /// nested simulate keeps in memory only those the fit can select), only inside the
  /// region of interest for DL3 (roi_only; they are the fit's events).
  std::int64_t n_simulated = 0;
  bool roi_only = false;
  std::int64_t fit_threads = 0;  ///< thread budget the fit ran with (always 1)

  /// "7612 events simulated, 3807 in the region" or, for DL3, "24023 events drawn in the
  /// region": the start of a trial's log line.
  [[nodiscard]] std::string events_text() const;
};

/// One trial inside `bin`, on one thread. Embedded and HDF5: a nested in-memory `simulate`,
/// then a nested `fit` of its events, both through bin.call (MPI_COMM_SELF, seeds derived
/// from the bin's stream; their log lines go into the bin's block). DL3: setup.dl3 draws the
/// events from the stream (bin.rng().derive_seed(0), 0), the one the nested simulate's first
/// slice would use, and fits them. Throws what the nested tools throw, and Error when the
/// fit's status is failed, so a failure fails this bin only. `break_fit` (test hook) passes
/// the nested fit an invalid parameter, or fails a DL3 trial with a message saying so.
TrialFit run_trial(BinContext& bin, const TrialSetup& setup, bool break_fit = false);

/// Collective over ctx's communicator. Checks `inobs` and tmin/tmax on rank 0 (bad input
/// ends every rank with one line, exit status 2) and resolves the source position (NaN =
/// the pointing of the event file, the DL3 observations' common RA_OBJ/DEC_OBJ, or the
/// embedded Crab pointing). For DL3 input it builds setup.dl3 on every rank: bad input too
/// is a DL3 set where no observation has livetime in [tmin, tmax), or where the source lies
/// outside the field of view (the effective area's offset axis) of every such observation.
void prepare_trials(RunContext& ctx, TrialSetup& setup);

/// Mean and width (sample standard deviation) of the finite values of a sample, with their
/// statistical uncertainties for a Gaussian sample: mean +- width / sqrt(n), width +-
/// width / sqrt(2 (n - 1)). NaN where n is too small (n < 1 for the mean, n < 2 else).
struct SampleSummary {
  std::int64_t n = 0;
  double mean = 0.0, mean_err = 0.0;
  double width = 0.0, width_err = 0.0;
};
SampleSummary summarize(std::span<const double> values);

/// k successes out of n: the fraction and its binomial error sqrt(p (1 - p) / n).
struct Fraction {
  std::int64_t k = 0;
  std::int64_t n = 0;
  double value = 0.0, err = 0.0;
};
Fraction binomial_fraction(std::int64_t k, std::int64_t n);

/// The values of f64 `column` in the rows of `table` whose status is bin_status::ok.
std::vector<double> ok_values(const Table& table, const std::string& column);

class PullTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "pull", "pull distribution: simulate and fit a known model in every trial (ctools cspull)"};
  PullTool() : Tool(info) {}
  /// The /results columns; pull_gamma and gamma_err only with a free index, N0_ul and
  /// ul_covers only with upper limits.
  [[nodiscard]] static Schema schema(bool free_index, bool calc_ulim);
  /// The console's columns: fitted values with errors, the pulls, TS, limit, status.
  [[nodiscard]] std::vector<TextColumn> console_view() const override;

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Collective over ctx.runtime().comm: maps the trials, then (rank 0) the summary.
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] Row run_pull_trial(BinContext& bin, const TrialSetup& setup,
                                   const Schema& columns) const;

  TrialSetup setup_;
  std::vector<std::int64_t> fail_trials_;
};

}  // namespace binflow::apps
