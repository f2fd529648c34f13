#pragma once
// `binflow spectrum`: the ctools csspec of binflow (SLICE method). A global fit of the whole
// energy range with the index free, run as a nested `fit` (the same tool class as
// `binflow fit`, through BinContext::invoke) inside a one-bin map "global", gives gamma; then
// every energy bin fits N0 and beta with gamma fixed to it, and reports the flux point
// dN/dE at the bin's log centre, its error, TS and upper limit (SCIENCE.md sections 2, 3, 5).
#include <cstdint>
#include <string>
#include <vector>

#include "binflow/tool.hpp"
#include "science/event_file.hpp"
#include "science/likelihood.hpp"
#include "tools/analysis.hpp"
#include "tools/fit.hpp"

namespace binflow::apps {

class SpectrumTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "spectrum",
      "spectral points: a global fit, then N0 and beta per energy bin with the index fixed"};
  SpectrumTool() : Tool(info) {}
  /// Columns of /results: one flux point per energy bin.
  [[nodiscard]] static Schema schema();

  /// GADF flux points (FluxPoints.read(path)), HDU FLUX_POINTS; the global fit in the header.
  [[nodiscard]] bool writes_fits() const override { return true; }
  void write_fits(const std::string& path, const ToolOutput& out,
                  const RunProvenance& provenance) const override;
  [[nodiscard]] std::vector<TextColumn> console_view() const override;

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Collective over ctx.runtime().comm: two maps, "global" (one bin) then "spectrum".
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] BinPlan make_plan() const;
  [[nodiscard]] FitTool::Request global_fit(double emin, double emax) const;

  AnalysisParameters analysis_;  // free_index unused: the global fit frees it, the bins fix it
  std::string ebinalg_ = "LOG";
  std::int64_t enumbins_ = 20;
  std::string ebinfile_;
};

}  // namespace binflow::apps
