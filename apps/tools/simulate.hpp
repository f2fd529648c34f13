#pragma once
// `binflow simulate`: an event file (SCIENCE.md section 1) holding a Poisson realisation of
// a point source and background (section 4), written collectively by all ranks. The file's
// bits depend only on the parameters and the seed, never on ranks or threads.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "binflow/tool.hpp"
#include "science/defaults.hpp"
#include "science/observation.hpp"
#include "science/phase.hpp"
#include "science/response.hpp"
#include "science/simulate.hpp"

namespace binflow::apps {

class SimulateTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "simulate", "simulate an event file: point source plus background on an observation's GTIs"};

  /// Every parameter of simulate with its default (SCIENCE.md section 4): bound to the
  /// command line, and the typed request of a nested simulation (BinContext::call).
  struct Request {
    double duration = 14400.0;
    double tstart = 0.0;
    double n0 = science::defaults::n0;
    double gamma = science::defaults::gamma;
    double beta = science::defaults::beta;
    double ra = science::defaults::ra;
    double dec = science::defaults::dec;
    double theta_sim = science::defaults::theta_sim;
    std::string profile = "constant";
    double amplitude = 3.0;
    std::string t_peak = "middle";
    double width = 600.0;
    std::string profile_file;
    double pulsed_fraction = 0.5;
    double peak_phase = 0.3;
    double peak_width = 0.05;
    double t_ref = science::Ephemeris{}.t_ref;
    double f0 = science::Ephemeris{}.f0;
    double f1 = science::Ephemeris{}.f1;
    double f2 = science::Ephemeris{}.f2;
    double slice = 60.0;
    std::string inirf;
    /// Not a parameter (nested runs only): keep in memory only the events an analysis with
    /// these cuts can select (science::Simulator::events with a RoiFilter). The events it
    /// selects are the same bits as without the filter; the others are drawn and skipped.
    std::optional<science::RoiFilter> keep;
  };
  /// A nested simulation's result: the events, in memory, and the observation simulated on
  /// (GTIs, response, pointing). The same bits as the file the same request and seed give.
  struct Result {
    science::Events events;  ///< with Request::keep only those it keeps
    science::Observation observation;
    /// Events drawn (what the file of the same request and seed would hold), kept or not.
    std::int64_t drawn = 0;
  };

  SimulateTool() : Tool(info) {}
  /// No bins; writes `outfile` itself (the driver has checked it, including clobber).
  [[nodiscard]] bool uses_bins() const override { return false; }
  [[nodiscard]] bool writes_outfile() const override { return true; }

  /// For BinContext::call: the next run (one only) simulates `request` in memory instead of
  /// writing a file (`outfile` is then ignored). Slices run over the nested run's thread
  /// budget (science::simulate_events); the events are the same bits as the file the same
  /// request and seed would give.
  void apply(Request request);
  /// The events of the run after apply(); InternalError without one.
  [[nodiscard]] Result result_of(const ToolOutput& out);

protected:
  void declare(ParameterSet& params) override;
  /// Builds the observation, profile and simulator, so that every input error is a
  /// UsageError before any work (every rank reads `inirf` and `profile_file` itself).
  void validate() override;
  /// Collective over ctx.runtime().comm: writes outfile; logs a summary on rank 0.
  ToolOutput execute(RunContext& ctx) override;

private:
  Request p_;

  // Built by validate(), used by execute().
  science::Observation observation_;
  std::unique_ptr<science::Simulator> simulator_;

  // Not parameters: set by apply() for the next run, filled by it, taken by result_of().
  bool in_memory_ = false;
  std::optional<Result> captured_;
};

}  // namespace binflow::apps
