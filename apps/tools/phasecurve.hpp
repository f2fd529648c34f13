#pragma once
// `binflow phasecurve`: the ctools csphasecrv of binflow. One likelihood fit of N0 and beta
// (index fixed to gamma_ref unless free_index) per pulse-phase bin, phases from an ephemeris
// (SCIENCE.md section 5: phase = frac(f0 dt + f1 dt^2/2 + f2 dt^3/6), dt = t - t_ref; the
// livetime of a phase bin is the total livetime times the bin width). Each bin streams the
// events of the time range window by window and keeps those of its phases: memory follows
// one window plus the bin's selection, never the file.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "binflow/tool.hpp"
#include "science/event_file.hpp"
#include "science/likelihood.hpp"
#include "science/phase.hpp"
#include "tools/analysis.hpp"

namespace binflow::apps {

class PhasecurveTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "phasecurve",
      "phase curve: a likelihood fit of flux, TS and upper limit per pulse-phase bin"};
  PhasecurveTool() : Tool(info) {}
  /// Columns of /results: one row per phase bin.
  [[nodiscard]] static Schema schema();

  /// The light curve's GADF layout with phase_min, phase_max for the time columns (Gammapy
  /// has no phase-curve format: astropy reads it as a table), HDU PHASECURVE.
  [[nodiscard]] bool writes_fits() const override { return true; }
  void write_fits(const std::string& path, const ToolOutput& out,
                  const RunProvenance& provenance) const override;
  [[nodiscard]] std::vector<TextColumn> console_view() const override;

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Collective over ctx.runtime().comm.
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] BinPlan make_plan() const;

  AnalysisParameters analysis_;
  double t_ref_ = science::Ephemeris{}.t_ref;
  double f0_ = science::Ephemeris{}.f0;
  double f1_ = science::Ephemeris{}.f1;
  double f2_ = science::Ephemeris{}.f2;
  std::int64_t phbins_ = 10;
  std::string phbinfile_;
  double window_ = 3600.0;
};

}  // namespace binflow::apps
