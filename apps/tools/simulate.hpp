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
  double slice_;
  std::string inirf_;

  std::optional<science::Observation> observation_;
  std::optional<science::Simulator> simulator_;
};

}  // namespace binflow::apps
