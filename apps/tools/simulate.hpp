#pragma once
// `binflow simulate`: an event file (SCIENCE.md section 1) holding a Poisson realisation of
// a point source and background (section 4), written collectively by all ranks. The file's
// bits depend only on the parameters and the seed, never on ranks or threads.
#include <cstdint>
#include <optional>
#include <string>

#include "binflow/tool.hpp"
#include "science/observation.hpp"
#include "science/response.hpp"
#include "science/simulate.hpp"

namespace binflow::apps {

class SimulateTool final : public Tool {
public:
  SimulateTool() { reset(); }
  [[nodiscard]] std::string name() const override { return "simulate"; }
  [[nodiscard]] std::string summary() const override {
    return "simulate an event file: point source plus background on an observation's GTIs";
  }
  /// No bins; writes `outfile` itself (the driver has checked it, including clobber).
  [[nodiscard]] bool uses_bins() const override { return false; }
  [[nodiscard]] bool writes_outfile() const override { return true; }

  /// The next run (one only) simulates in memory into `*out` instead of writing a file
  /// (`outfile` is then ignored and may be empty), and stores the observation simulated on
  /// (GTIs, response, pointing) in `*observation` when given. For nested use (pull, tsdist):
  /// call before BinContext::invoke; configure() keeps the request. Slices run over the
  /// run's thread budget (science::simulate_events); the events are the same bits
  /// as the file the same parameters and seed would give. The pointers must stay valid
  /// until that run ends.
  void capture_events(science::Events* out, science::Observation* observation = nullptr);

protected:
  void declare(ParameterSet& params) override;
  void reset() override;
  /// Builds the observation, profile and simulator, so that every input error is a
  /// UsageError before any work (every rank reads `inirf` and `profile_file` itself).
  void validate() override;
  /// Collective over ctx.runtime().comm: writes outfile; logs a summary on rank 0.
  ToolOutput execute(RunContext& ctx) override;

private:
  double duration_;
  double tstart_;
  double n0_;
  double gamma_;
  double beta_;
  double ra_;
  double dec_;
  double theta_sim_;
  std::string profile_;
  double amplitude_;
  std::string t_peak_;
  double width_;
  std::string profile_file_;
  double pulsed_fraction_;
  double peak_phase_;
  double peak_width_;
  double t_ref_;
  double f0_;
  double f1_;
  double f2_;
  double slice_;
  std::string inirf_;

  std::optional<science::Observation> observation_;
  std::optional<science::Simulator> simulator_;

  // Not parameters: survive configure() and are consumed by the next run.
  science::Events* capture_ = nullptr;
  science::Observation* capture_observation_ = nullptr;
};

}  // namespace binflow::apps
