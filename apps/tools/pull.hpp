#pragma once
// `binflow pull`: the ctools cspull of binflow. Each Monte Carlo trial simulates an
// observation of a known model and fits it; the pulls (fit - true) / error over many trials
// check the fit's bias and errors (SCIENCE.md section 6). A trial is one bin of
// BinPlan::trials: it runs `simulate` (in memory) and `fit` nested through
// BinContext::invoke, each with one thread on MPI_COMM_SELF and a seed derived from the
// trial's stream (seed, k), so the results do not depend on ranks, threads or schedule.
//
// The trial machinery and the summary statistics are shared with `binflow tsdist`.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "binflow/bin_context.hpp"
#include "binflow/tool.hpp"
#include "science/defaults.hpp"
#include "tools/analysis.hpp"
#include "tools/fit.hpp"
#include "tools/simulate.hpp"

namespace binflow::apps {

/// The observation, true model and analysis of every Monte Carlo trial of pull and tsdist.
struct TrialSetup {
  std::int64_t ntrials = 100;  ///< trial k draws from the stream (seed, k)
  std::string inobs;           ///< response and GTIs from this event file; empty = embedded
  double duration = 1800.0;    ///< length of the embedded observation, s (ignored with inobs)
  double n0 = science::defaults::n0;        ///< true source flux at 1 TeV
  double gamma = science::defaults::gamma;  ///< true index (and the fitted index when fixed)
  double beta = science::defaults::beta;    ///< true background normalisation
  /// Where and what the trials fit: energy range, region (ra and dec NaN = the pointing,
  /// resolved by prepare_trials), free_index, calc_ulim, confidence. gamma_ref and calc_ts
  /// are not parameters of the trials (the true gamma; always on).
  AnalysisParameters analysis;
  int chatter = 1;  ///< of the nested tools (their lines go into the trial's log block)

  /// Declares `ntrials`, `inobs` and `duration` (how many trials, and the observation every
  /// trial simulates).
  void declare_trials(ParameterSet& params);
  /// The nested simulation of the true model.
  [[nodiscard]] SimulateTool::Request simulation() const;
  /// The nested fit of `simulated`; `break_fit` gives it an invalid emin (test hook).
  [[nodiscard]] FitTool::Request fit(SimulateTool::Result simulated, bool break_fit = false) const;
};

/// What one trial's nested fit returned.
struct TrialFit {
  science::FitResult fit;        ///< status ok or empty (a failed fit fails the trial)
  std::int64_t n_simulated = 0;  ///< events the nested simulate drew (whole IRF grid)
  std::int64_t fit_threads = 0;  ///< thread budget the nested fit's bin ran with
};

/// One trial inside `bin`: a nested in-memory `simulate`, then a nested `fit` of its events,
/// both through bin.call (one thread, MPI_COMM_SELF, seeds derived from the bin's stream;
/// their log lines go into the bin's block). Throws what the nested tools throw, and Error
/// when the fit's status is failed, so a nested failure fails this bin only. `break_fit`
/// passes the fit an invalid parameter.
TrialFit run_trial(BinContext& bin, const TrialSetup& setup, bool break_fit = false);

/// Resolves the source position (NaN = the pointing of `inobs`, or the embedded Crab
/// pointing) and checks `inobs` on rank 0 (collective over ctx's communicator: bad input
/// ends every rank with one line, exit status 2).
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
